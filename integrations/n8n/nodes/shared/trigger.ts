// A polling trigger node: one connector poll per n8n poll, the trigger state kept in the
// node's workflow static data (which n8n saves after each poll of an active workflow).

import type { IDataObject, INodeExecutionData, IPollFunctions } from 'n8n-workflow';

import { inputsFrom, runOperation } from './transport';

/** Poll `operation`. n8n's "fetch test event" (manual mode) runs the connector's test mode:
 *  up to three recent follows to map fields, and the state is left exactly as it was. */
export async function pollOperation(
	this: IPollFunctions,
	operation: string,
	formFields: string[],
): Promise<INodeExecutionData[][] | null> {
	const manual = this.getMode() === 'manual';
	const staticData = this.getWorkflowStaticData('node');
	const state = (staticData.state as IDataObject | undefined) ?? null;
	const answer = await runOperation.call(this, {
		operation,
		inputs: inputsFrom.call(this, formFields),
		state,
		mode: manual ? 'test' : 'live',
	});
	if (!manual) {
		// Handed to n8n with the items below; a failed poll threw above and left it alone.
		staticData.state = answer.state;
	}
	if (!answer.items.length) return null;
	return [this.helpers.returnJsonArray(answer.items)];
}
