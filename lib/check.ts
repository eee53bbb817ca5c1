// kvm-gmem check. Being built: see issue 7.
export async function runCheck(_args: string[]): Promise<number> {
  console.log('check: not yet');
  return 2;
}
