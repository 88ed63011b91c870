//! Email templates compiled into the binary: per message, a subject, a text and an HTML
//! template (`templates/email/<name>.subject.txt`, `.txt`, `.html`), the HTML ones
//! extending one layout. HTML is autoescaped; text and subject are not (they are not
//! HTML), and a subject is kept to one line.

use minijinja::{Environment, Value};
use std::sync::OnceLock;

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("email template {name}: {source}")]
pub struct TemplateError {
    name: String,
    #[source]
    source: minijinja::Error,
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        });
        // A missing value is a bug in the context, not something to send as "".
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // Templates are ours, but a loop over a huge order should still end.
        env.set_fuel(Some(2_000_000));
        load(&mut env);
        env
    })
}

#[expect(clippy::expect_used, reason = "minijinja-embed checks the templates when the crate is built")]
fn load(mut env: &mut Environment<'static>) {
    minijinja_embed::load_templates!(env);
}

fn one(name: &str, ctx: &Value) -> Result<String, TemplateError> {
    env().get_template(name).and_then(|t| t.render(ctx)).map_err(|source| TemplateError { name: name.into(), source })
}

/// Renders message `name` (e.g. `order_placed`) with `ctx`.
pub fn render(name: &str, ctx: &Value) -> Result<Rendered, TemplateError> {
    let subject = one(&format!("email/{name}.subject.txt"), ctx)?;
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = one(&format!("email/{name}.txt"), ctx)?;
    let html = one(&format!("email/{name}.html"), ctx)?;
    Ok(Rendered { subject, text: text.trim().to_owned() + "\n", html })
}

/// Every message template there is (by name), for tests and the panel.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> =
        env().templates().filter_map(|(n, _)| n.strip_prefix("email/")?.strip_suffix(".subject.txt")).collect();
    names.sort_unstable();
    names
}
