// Where the API is, for the pages and the console alike: this page's own
// origin, unless the page is hosted elsewhere and its `onramp-api` meta tag
// names the gRPC-Web address.

export function baseUrl(): string {
  const meta = document.querySelector<HTMLMetaElement>('meta[name="onramp-api"]');
  const configured = meta?.content.trim();
  return configured ? configured.replace(/\/$/, "") : window.location.origin;
}
