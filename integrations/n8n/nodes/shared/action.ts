// An action node: one connector run per input item, one output item per account.

import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';

import { inputsFrom, runOperation } from './transport';

export async function executeOperation(
	this: IExecuteFunctions,
	operation: string,
	formFields: string[],
): Promise<INodeExecutionData[][]> {
	const out: INodeExecutionData[] = [];
	const items = this.getInputData();
	for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
		try {
			const answer = await runOperation.call(this, {
				operation,
				inputs: inputsFrom.call(this, formFields, itemIndex),
				mode: 'live',
			});
			for (const account of answer.items) out.push({ json: account, pairedItem: { item: itemIndex } });
		} catch (error) {
			if (!this.continueOnFail()) throw error;
			out.push({ json: { error: (error as Error).message }, pairedItem: { item: itemIndex } });
		}
	}
	return [out];
}
