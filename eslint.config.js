import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'cdk.out/**', '.cfs/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The domain core stays free of infrastructure (STYLE.md habit 2).
    files: ['functions/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['@aws-sdk/*', 'aws-lambda', 'node:child_process', 'child_process'] }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env' }],
    },
  },
);
