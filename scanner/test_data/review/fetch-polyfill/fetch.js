export function fetch(url, options) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(options && options.method || 'GET', url);
    request.onload = () => resolve(request.response);
    request.onerror = reject;
    request.send();
  });
}
