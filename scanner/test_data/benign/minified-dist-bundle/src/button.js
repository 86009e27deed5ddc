export function button(label) { return { label }; }
