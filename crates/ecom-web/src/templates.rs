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

/// Templates a merchant may edit: the storefront's.
pub fn editable() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = env()
        .templates()
        .map(|(name, _)| name)
        .filter(|n| n.starts_with("storefront/") || *n == "layout/store.html" || *n == "layout/base.html")
        .collect();
    names.sort_unstable();
    names
}

/// The built-in source of a template.
pub fn builtin_source(name: &str) -> Option<String> {
    env().get_template(name).ok().map(|t| t.source().to_owned())
}

/// Why a merchant's template was refused: minijinja's message and the line.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateProblem {
    pub message: String,
    pub line: Option<usize>,
}

/// Compiles a merchant's version of `name` against the built-in theme.
pub fn check(name: &str, source: &str) -> Result<(), TemplateProblem> {
    let mut trial = env().clone();
    trial.add_template_owned(name.to_owned(), source.to_owned()).map_err(|e| TemplateProblem {
        message: e.detail().map_or_else(|| e.to_string(), str::to_owned),
        line: e.line(),
    })
}

/// Rendering budget for merchant templates: generous for any real page, but a loop
/// that would never end stops.
const THEME_FUEL: u64 = 2_000_000;

/// The built-in theme with a store's edited templates on top. Sandboxed like the
/// built-in one: no file or network access, autoescaped, and a fuel limit.
pub fn store_env(overrides: &[(String, String)]) -> Environment<'static> {
    let mut env = env().clone();
    env.set_fuel(Some(THEME_FUEL));
    for (name, source) in overrides {
        if let Err(e) = env.add_template_owned(name.clone(), source.clone()) {
            tracing::warn!(template = %name, error = %e, "a stored theme template does not compile; the built-in one is used");
        }
    }
    env
}

/// Renders with a store's theme; if its template fails at run time, the built-in
/// template serves the page instead, so an edit never takes the store down.
pub fn render_in(store: &Environment<'static>, name: &str, ctx: Value) -> Html<String> {
    match store.get_template(name).and_then(|t| t.render(ctx.clone())) {
        Ok(html) => Html(html),
        Err(e) => {
            tracing::warn!(template = name, error = %e, "theme template failed; served the built-in one");
            render(name, ctx)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runaway_theme_template_is_stopped_and_the_built_in_one_serves() {
        let looping = "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}";
        assert!(check("storefront/offline.html", looping).is_ok(), "it compiles; it just never ends");
        let env = store_env(&[("storefront/pages/about.html".into(), looping.into())]);
        let started = std::time::Instant::now();
        let ctx = minijinja::context! { store => minijinja::context! { name => "Shop", slug => "shop" }, title => "About us" };
        let html = render_in(&env, "storefront/pages/about.html", ctx).0;
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(html.contains("independent shop"), "{html}");
        let problem = check("storefront/home.html", "{% if %}").err().map(|p| p.line);
        assert_eq!(problem, Some(Some(1)));
    }
}
