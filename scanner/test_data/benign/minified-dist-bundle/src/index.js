export function widget(name) { return { name }; }
