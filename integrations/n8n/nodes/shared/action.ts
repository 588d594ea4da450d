// An action node: one connector run per input item, one output item per account. Each item
// also carries the run's `nextCursor` and `hasMore`, so a workflow (or an AI agent using the
// node as a tool) can go on where the run stopped: pass `nextCursor` as the Start Cursor.

import type { IDataObject, IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';

import { inputsFrom, runOperation, type InputPlan } from './transport';

export async function executeOperation(
	this: IExecuteFunctions,
	operation: string,
	plan: InputPlan,
): Promise<INodeExecutionData[][]> {
	const out: INodeExecutionData[] = [];
	const items = this.getInputData();
	for (let itemIndex = 0; itemIndex < items.length; itemIndex++) {
		const outcome = await runOperation.call(this, {
			operation,
			inputs: inputsFrom.call(this, plan, itemIndex),
			mode: 'live',
		});
		if ('error' in outcome) {
			if (!this.continueOnFail()) {
				outcome.error.context.itemIndex = itemIndex;
				throw outcome.error;
			}
			out.push({ json: { error: outcome.error.message }, pairedItem: { item: itemIndex } });
			continue;
		}
		const { items: accounts, meta } = outcome.answer;
		const paging: IDataObject = { nextCursor: meta.nextCursor ?? null, hasMore: meta.hasMore === true };
		for (const account of accounts) {
			out.push({ json: { ...account, ...paging }, pairedItem: { item: itemIndex } });
		}
	}
	return [out];
}
