export async function onEvent() {}
export async function isComplete() {}
