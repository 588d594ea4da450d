// n8n's community-node lint rules (eslint-plugin-n8n-nodes-base), as the n8n node starter
// sets them up, plus what n8n's verification asks of a community node: no runtime imports but
// n8n-workflow, no environment, file, process or timer access.
module.exports = {
	root: true,
	env: { es2022: true },
	parser: '@typescript-eslint/parser',
	parserOptions: { sourceType: 'module', extraFileExtensions: ['.json'] },
	ignorePatterns: ['.eslintrc.js', '**/*.js', '**/*.mjs', '**/node_modules/**', '**/dist/**'],
	overrides: [
		{
			files: ['package.json'],
			plugins: ['eslint-plugin-n8n-nodes-base'],
			extends: ['plugin:n8n-nodes-base/community'],
		},
		{
			files: ['./credentials/**/*.ts'],
			plugins: ['eslint-plugin-n8n-nodes-base'],
			extends: ['plugin:n8n-nodes-base/credentials'],
			rules: {
				// Off in n8n's own node starter too: a community package links to its own docs.
				'n8n-nodes-base/cred-class-field-documentation-url-miscased': 'off',
			},
		},
		{
			files: ['./nodes/**/*.ts'],
			plugins: ['eslint-plugin-n8n-nodes-base'],
			extends: ['plugin:n8n-nodes-base/nodes'],
		},
		{
			files: ['./credentials/**/*.ts', './nodes/**/*.ts'],
			parserOptions: { project: ['./tsconfig.json'] },
			rules: {
				// test/package.test.mjs checks the built files too: nothing but n8n-workflow and
				// the package's own modules is required.
				'no-restricted-imports': ['error', {
					paths: ['child_process', 'fs', 'fs/promises', 'os', 'path', 'http', 'https', 'net', 'tls',
						'dgram', 'dns', 'vm', 'worker_threads', 'cluster', 'process', 'module'],
					patterns: ['node:*', 'axios', 'undici', 'node-fetch'],
				}],
				'no-restricted-globals': ['error', 'process', 'require', 'module', 'Buffer', 'globalThis', 'eval',
					'setTimeout', 'setInterval', 'setImmediate', 'fetch', 'XMLHttpRequest', '__dirname', '__filename'],
			},
		},
	],
};
