export class EventBus<T extends Record<string, unknown[]>> {
  private handlers = new Map<keyof T, Array<(...args: unknown[]) => void>>();
  on<K extends keyof T>(event: K, handler: (...args: T[K]) => void): void {
    const list = this.handlers.get(event) ?? [];
    list.push(handler as (...args: unknown[]) => void);
    this.handlers.set(event, list);
  }
}
