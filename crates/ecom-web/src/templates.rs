//! Templates compiled into the binary, autoescaped, rendered with minijinja.

use axum::response::Html;
use minijinja::{Environment, Value};
use std::sync::OnceLock;

/// The built-in templates never change at run time, so one environment serves every
/// app in the process. (Merchant-edited storefront themes will get their own,
/// sandboxed environments per store.)
fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") || name.ends_with(".xml") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        load_builtin(&mut env);
        env
    })
}

#[expect(clippy::expect_used, reason = "minijinja-embed checks the templates when the crate is built")]
fn load_builtin(mut env: &mut Environment<'static>) {
    minijinja_embed::load_templates!(env);
}

/// A serde value for a template context.
pub fn ser<T: serde::Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

/// Renders a template; a rendering failure is a bug, logged, and shown as a plain
/// error page rather than a panic.
pub fn render(name: &str, ctx: minijinja::Value) -> Html<String> {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html),
        Err(e) => {
            tracing::error!(template = name, error = %e, "template failed to render");
            Html(
                "<!doctype html><title>Error</title><h1>Something went wrong</h1><p>Please try again in a moment.</p>"
                    .into(),
            )
        }
    }
}
