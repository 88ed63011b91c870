//! GraphiQL (`src/graphql/graphiql.rs`) on its own, to try it in a browser without
//! the rest of the app: the page at `/`, its assets at `/static/graphiql/{file}` and,
//! at `POST /graphql`, a one-field schema echoing what the request carried (the
//! Content-Type, Origin, cookie and Authorization headers), all under the app's CSP.
//!
//! ```sh
//! cargo run -p ecom-web --example graphiql -- 8099   # then open http://127.0.0.1:8099/
//! cargo test -p ecom-web --example graphiql          # the module's unit tests
//! ```

#[path = "../src/graphql/graphiql.rs"]
mod graphiql;

use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

/// As set by `security_headers` in `src/telemetry.rs`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

const DEFAULT_QUERY: &str = "# What the server received with this request.
# Under Headers, add e.g.
# {\"Authorization\": \"Bearer demo\"}
# and run it again.
query Echo {
  echo {
    contentType
    origin
    cookie
    authorization
  }
}
";

type EchoSchema = Schema<Query, EmptyMutation, EmptySubscription>;

struct Query;

#[Object]
impl Query {
    /// The request's headers as the server saw them.
    async fn echo(&self, ctx: &Context<'_>) -> Echo {
        ctx.data_opt::<Echo>().cloned().unwrap_or_default()
    }
}

#[derive(SimpleObject, Clone, Default)]
struct Echo {
    content_type: Option<String>,
    origin: Option<String>,
    cookie: Option<String>,
    authorization: Option<String>,
}

async fn graphql(State(schema): State<EchoSchema>, headers: HeaderMap, req: GraphQLRequest) -> GraphQLResponse {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let echo = Echo {
        content_type: get(header::CONTENT_TYPE),
        origin: get(header::ORIGIN),
        cookie: get(header::COOKIE),
        authorization: get(header::AUTHORIZATION),
    };
    schema.execute(req.into_inner().data(echo)).await.into()
}

/// The page, with a cookie standing in for a signed-in session.
async fn index() -> Response {
    let mut resp = graphiql::page("/graphql", "GraphiQL demo", DEFAULT_QUERY);
    resp.headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static("demo_session=signed-in; Path=/; HttpOnly; SameSite=Lax"));
    resp.into_response()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8099);
    let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
    let app = Router::new()
        .route("/", get(index))
        .route("/static/graphiql/{file}", get(graphiql::asset))
        .route("/graphql", axum::routing::post(graphql))
        .with_state(schema)
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("GraphiQL demo on http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await
}
