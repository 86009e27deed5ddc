export declare class EventBus<T> { on(event: string, handler: Function): void }
