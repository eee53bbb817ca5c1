// The demo (npm start). Being built: see issue 4.
export async function runDemo(_args: string[]): Promise<number> {
  console.log('demo: not yet');
  return 0;
}
