// ESLint for the TypeScript and JavaScript (npm run lint): the recommended rules of ESLint and
// typescript-eslint, without type information (fast on two cores). Formatting is Prettier's.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'build/',
      'build-asan/',
      'prebuilds/',
      'coverage/',
      '**/node_modules/',
      'bench/results/',
      'bench/baselines/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_`-prefixed names are deliberately unused (a callback's leading parameters).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // An empty catch says "this failure is expected"; the ones here carry a comment saying why.
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    // CommonJS fixtures and configs.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
