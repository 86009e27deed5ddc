export const View = ({ name }: { name: string }) => <div className="view">{name}</div>;
