// A polling trigger node: one connector poll per n8n poll, the trigger state kept in the
// node's workflow static data. n8n saves it after each poll of an active workflow that emits
// items; from n8n 2.36, with durable poll cursors, also after a poll that emits nothing, but
// only when the node changed the static data object it was given, in place. So the state is
// a property of that object, never a new object.

import type { IDataObject, INodeExecutionData, IPollFunctions } from 'n8n-workflow';

import { inputsFrom, runOperation, TIMEOUT_MS, type InputPlan } from './transport';

/** Poll `operation`. n8n's "fetch test event" (manual mode) runs the connector's test mode:
 *  up to three recent follows to map fields, and the state is left exactly as it was. */
export async function pollOperation(
	this: IPollFunctions,
	operation: string,
	plan: InputPlan,
): Promise<INodeExecutionData[][] | null> {
	const manual = this.getMode() === 'manual';
	const staticData = this.getWorkflowStaticData('node');
	const state = (staticData.state as IDataObject | undefined) ?? null;
	const outcome = await runOperation.call(
		this,
		{ operation, inputs: inputsFrom.call(this, plan), state, mode: manual ? 'test' : 'live' },
		pollTimeout(this),
	);
	// A failed poll leaves the state alone: the next poll repeats it, nothing is skipped.
	if ('error' in outcome) throw outcome.error;
	if (!manual) staticData.state = outcome.answer.state;
	if (!outcome.answer.items.length) return null;
	return [this.helpers.returnJsonArray(outcome.answer.items)];
}

/** The request may take as long as n8n lets the poll run (n8n 2.x's scheduler gives each poll
 *  a budget; older n8n has none), at most TIMEOUT_MS. */
function pollTimeout(context: IPollFunctions): number {
	const budget = typeof context.getPollBudgetMs === 'function' ? context.getPollBudgetMs() : TIMEOUT_MS;
	return Math.max(1000, Math.min(TIMEOUT_MS, budget));
}
