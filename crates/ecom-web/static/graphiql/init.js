// Mounts GraphiQL on #graphiql. A file of its own because the CSP allows no inline
// script. The page (graphql/graphiql.rs) gives the endpoint in data-endpoint and the
// first tab's query in data-default-query; React, ReactDOM and GraphiQL are the UMD
// globals loaded before this file.
(function () {
  'use strict';
  var el = document.getElementById('graphiql');
  if (!el) return;
  if (!window.React || !window.ReactDOM || !window.GraphiQL) {
    el.textContent = 'GraphiQL failed to load.';
    return;
  }

  var fetcher = window.GraphiQL.createFetcher({
    url: el.getAttribute('data-endpoint') || '/graphql',
    // Lower case so it replaces, not doubles, the fetcher's own content-type.
    headers: { 'content-type': 'application/json' },
    // The API answers plain JSON; no @defer/@stream multipart responses.
    enableIncrementalDelivery: false,
    // Cookies go along on same-origin requests (a signed-in session works) and never
    // cross-origin; headers from the headers editor (Authorization: Bearer ...) are
    // merged in by the fetcher.
    fetch: function (input, init) {
      return window.fetch(input, Object.assign({}, init, { credentials: 'same-origin' }));
    },
  });

  window.ReactDOM.createRoot(el).render(
    window.React.createElement(window.GraphiQL, {
      fetcher: fetcher,
      defaultQuery: el.getAttribute('data-default-query') || '',
      isHeadersEditorEnabled: true,
      // Tokens typed into the headers editor stay out of localStorage.
      shouldPersistHeaders: false,
    })
  );
})();
