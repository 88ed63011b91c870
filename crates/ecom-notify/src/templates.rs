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

/// The built-in templates. Stores' own versions are added to clones of it
/// (`store_templates`), so they can extend the layout and include the partials; it
/// has no loader, so a template can reach nothing but these.
pub(crate) fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        });
        // A missing value is a bug in the context (or a typo in a store's template),
        // not something to send as "".
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        // A loop over a huge order, or a store's template that would never end, stops;
        // so does deep recursion (macros calling themselves).
        env.set_fuel(Some(2_000_000));
        env.set_recursion_limit(100);
        load(&mut env);
        env
    })
}

#[expect(clippy::expect_used, reason = "minijinja-embed checks the templates when the crate is built")]
fn load(mut env: &mut Environment<'static>) {
    minijinja_embed::load_templates!(env);
}

impl TemplateError {
    /// The template that failed (`email/order_placed.html`, …).
    pub fn template(&self) -> &str {
        &self.name
    }

    pub fn source_error(&self) -> &minijinja::Error {
        &self.source
    }
}

fn one(env: &Environment<'_>, name: &str, ctx: &Value) -> Result<String, TemplateError> {
    env.get_template(name).and_then(|t| t.render(ctx)).map_err(|source| TemplateError { name: name.into(), source })
}

/// Renders message `name` (e.g. `order_placed`) with `ctx`.
pub fn render(name: &str, ctx: &Value) -> Result<Rendered, TemplateError> {
    render_in(env(), "email", name, ctx)
}

/// Renders marketing message `name` (`templates/marketing/`, e.g. `abandoned_cart`),
/// whose context also has `unsubscribe_url`.
pub fn render_marketing(name: &str, ctx: &Value) -> Result<Rendered, TemplateError> {
    render_in(env(), "marketing", name, ctx)
}

/// Renders message `name` of `folder` with the templates of `env` (the built-in ones,
/// or a store's versions over them).
pub(crate) fn render_in(
    env: &Environment<'_>,
    folder: &str,
    name: &str,
    ctx: &Value,
) -> Result<Rendered, TemplateError> {
    let subject = one(env, &format!("{folder}/{name}.subject.txt"), ctx)?;
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = one(env, &format!("{folder}/{name}.txt"), ctx)?;
    let html = one(env, &format!("{folder}/{name}.html"), ctx)?;
    let html = if html.trim().is_empty() { String::new() } else { html };
    Ok(Rendered { subject, text: text.trim().to_owned() + "\n", html })
}

/// Renders one template of `env` (a text channel's message).
pub(crate) fn render_one(env: &Environment<'_>, name: &str, ctx: &Value) -> Result<String, TemplateError> {
    one(env, name, ctx)
}

/// The built-in source of a template, e.g. `email/order_placed.html`.
pub fn builtin_source(name: &str) -> Option<String> {
    env().get_template(name).ok().map(|t| t.source().to_owned())
}

/// Every message template there is (by name), for tests and the panel.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> =
        env().templates().filter_map(|(n, _)| n.strip_prefix("email/")?.strip_suffix(".subject.txt")).collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use minijinja::context;

    fn sample(store_name: &str) -> Value {
        context! {
            store => context! { name => store_name, url => "http://demo.localhost", color => "#2f5bd3",
                ink => "#ffffff", link => "#2f5bd3", logo_url => () },
            order => context! {
                number => 1001, url => "http://demo.localhost/orders/abc", admin_url => "http://demo.localhost/merchant/orders/1001",
                placed_on => "December 1, 2026", email => "pat@example.com",
                lines => vec![context! { title => "Wool Hat", variant => "Red", sku => "H-1", quantity => 2,
                    unit_price => "$25.00", total => "$50.00" }],
                subtotal => "$50.00", discount => (), discount_code => "", shipping => "$5.00", shipping_title => "Standard",
                tax => "$3.13", taxes_included => false, total => "$58.13", refunded => "$10.00", fully_refunded => false,
                payment_status => "pending", payment_provider => "manual", carrier => "UPS", tracking_number => "1Z",
                address => vec!["Pat Doe", "1 Main St"],
                returned => vec![context! { title => "Wool Hat", variant => "Red", quantity => 1 }],
                restocked => true,
            },
            today => "December 1, 2026",
        }
    }

    #[test]
    fn every_message_renders_with_the_order_and_escapes_only_its_html() {
        let account = ["password_reset", "verify_email"];
        let names: Vec<&str> = names().into_iter().filter(|n| !account.contains(n)).collect();
        assert_eq!(
            names,
            [
                "new_order",
                "order_cancelled",
                "order_delivered",
                "order_out_for_delivery",
                "order_paid",
                "order_placed",
                "order_refunded",
                "order_return_received",
                "order_shipped"
            ]
        );
        for name in names {
            let r = render(name, &sample("Bits <b>&</b> Bobs")).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.subject.contains("1001") && !r.subject.contains('\n'), "{name}: {}", r.subject);
            assert!(r.text.contains("1001") && r.html.contains("1001"), "{name}");
            assert!(!r.html.contains("<b>&</b>"), "{name}: the store name is escaped in HTML");
            if r.html.contains("Bits") {
                assert!(r.html.contains("Bits &lt;b&gt;&amp;&lt;&#x2f;b&gt; Bobs"), "{name}");
            }
            assert!(!r.text.contains("&lt;"), "{name}: text is not HTML-escaped");
        }
        let placed = render("order_placed", &sample("Demo")).unwrap();
        assert!(placed.text.contains("2 × Wool Hat (Red) — $50.00") && placed.text.contains("Total: $58.13"));
        assert!(placed.html.contains("$58.13") && placed.html.contains("Pat Doe"));
    }

    #[test]
    fn account_emails_carry_the_link_unescaped_and_the_store_escaped() {
        let store = context! { name => "Bits <b>&</b> Bobs", url => "http://demo.localhost", color => "#2f5bd3",
        ink => "#ffffff", link => "#2f5bd3", logo_url => () };
        let link = "http://demo.localhost/account/reset?token=ab12";
        for name in ["password_reset", "verify_email"] {
            let ctx = context! { store => store.clone(), account => context! { name => "Pat", email => "pat@example.com" },
            link => Value::from_safe_string(link.into()), valid_for => "30 minutes" };
            let r = render(name, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.text.contains(link) && r.text.contains("30 minutes") && r.text.contains("Hello Pat"), "{name}");
            assert!(r.html.contains(&format!("href=\"{link}\"")), "{name}: the link as it is");
            assert!(r.html.contains("Bits &lt;b&gt;"), "{name}");
            assert!(r.subject.contains("Bits <b>&</b> Bobs"), "{name}: {}", r.subject);
        }
    }

    #[test]
    fn a_missing_value_is_an_error_not_an_empty_string() {
        assert!(render("order_placed", &context! { store => context! { name => "x" } }).is_err());
    }
}
