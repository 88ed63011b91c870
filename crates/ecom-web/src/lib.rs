//! HTTP for ECOM: one axum router serving every host. The `Host` header decides
//! whether a request is for the platform (landing page, super-admin panel) or for a
//! store (storefront, customer account, merchant panel).

mod admin;
mod admin_plans;
mod admin_stores;
mod auth;
mod channels;
mod checkout;
mod csrf;
mod dashboard;
mod dead_letters;
mod domains;
mod error;
pub mod graphql;
mod inbox;
mod integrations;
mod media;
mod merchant;
mod merchant_catalog;
mod merchant_orders;
mod merchant_webhooks;
mod notification_templates;
mod notifications;
mod onboarding;
mod ops;
mod preferences;
mod pwa;
mod session;
mod site;
mod staff;
mod state;
mod storefront;
mod telemetry;
mod templates;
mod themes;

pub use dashboard::Traffic;
pub use ops::install_metrics_recorder;
pub use state::{ApiLimits, AppState, Services, WebConfig};

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Builds the whole HTTP application.
pub fn router(state: AppState) -> Router {
    let app = Router::new()
        .route("/static/{file}", get(ops::static_file))
        .route("/manifest.webmanifest", get(pwa::store_manifest))
        .route("/merchant/manifest.webmanifest", get(pwa::merchant_manifest))
        .route("/icons/{file}", get(pwa::icon))
        .route("/media/{file}", get(media::serve))
        .route(
            "/merchant/products/{id}/images",
            post(merchant_catalog::upload_image)
                .layer(axum::extract::DefaultBodyLimit::max(ecom_media::MAX_BYTES + 64 * 1024)),
        )
        .route("/merchant/products/{id}/images/{image}/delete", post(merchant_catalog::delete_image))
        .route("/sw.js", get(pwa::service_worker))
        .route("/offline", get(pwa::offline))
        // Sign-in flows, one set of handlers for the three areas:
        // /account (customers), /merchant (staff), /admin (platform admins).
        .route("/{area}/login", get(auth::login_form).post(auth::login))
        .route("/{area}/logout", post(auth::logout))
        .route("/{area}/signup", get(auth::signup_form).post(auth::signup))
        .route("/{area}/password", get(auth::password_form).post(auth::change_password))
        .route("/{area}/forgot", get(auth::forgot_form).post(auth::forgot))
        .route("/{area}/reset", get(auth::reset_form).post(auth::reset))
        .route("/account", get(storefront::account).post(storefront::save_profile))
        .route("/account/phone", post(channels::send_code))
        .route("/account/phone/verify", post(channels::verify_code))
        .route("/account/phone/remove", post(channels::remove_phone))
        .route("/{area}/push/key", get(channels::public_key))
        .route("/{area}/push", post(channels::subscribe))
        .route("/{area}/push/unsubscribe", post(channels::unsubscribe))
        .route("/robots.txt", get(storefront::robots))
        .route("/sitemap.xml", get(storefront::sitemap))
        .route("/merchant", get(merchant::home))
        .route("/signup", get(onboarding::signup_form).post(onboarding::signup))
        .route("/signup/slug", get(onboarding::slug_check))
        .route("/merchant/welcome", get(onboarding::welcome))
        .route("/merchant/verify", get(onboarding::verify))
        .route("/merchant/verify/resend", post(onboarding::resend_verification))
        .route(
            "/merchant/settings",
            get(merchant::settings)
                .post(merchant::save_settings)
                .layer(axum::extract::DefaultBodyLimit::max(ecom_media::MAX_BYTES + 64 * 1024)),
        )
        .route("/brand.css", get(pwa::brand_css))
        .route("/cart", get(checkout::cart))
        .route("/cart/add", post(checkout::add))
        .route("/cart/update", post(checkout::update))
        .route("/checkout", get(checkout::checkout).post(checkout::submit))
        .route("/orders/{token}", get(checkout::order_page))
        .route("/orders/{token}/pay", post(checkout::pay_again))
        .route("/account/orders", get(checkout::my_orders))
        .route("/account/orders/{number}", get(checkout::my_order))
        .route("/account/orders/{number}/again", post(checkout::order_again))
        .route("/account/orders/{number}/return", post(checkout::request_return))
        .route("/account/addresses", post(checkout::save_address))
        .route("/webhooks/test-card", post(checkout::test_card_webhook))
        .route("/webhooks/stripe", post(checkout::stripe_webhook))
        .route("/merchant/orders", get(merchant_orders::list))
        .route("/merchant/customers", get(merchant_orders::customers))
        .route("/merchant/audit", get(merchant::audit))
        .route("/merchant/customers/{id}", get(merchant_orders::customer))
        .route("/merchant/orders/{number}", get(merchant_orders::detail).post(merchant_orders::act))
        .route("/merchant/settings/api", get(merchant::api_tokens).post(merchant::create_api_token))
        .route("/merchant/settings/api/{id}/revoke", post(merchant::revoke_api_token))
        .route("/merchant/settings/webhooks", get(merchant_webhooks::list).post(merchant_webhooks::create))
        .route("/merchant/settings/webhooks/{id}", get(merchant_webhooks::detail))
        .route("/merchant/settings/webhooks/{id}/status", post(merchant_webhooks::set_status))
        .route("/merchant/settings/webhooks/{id}/delete", post(merchant_webhooks::delete))
        .route("/merchant/settings/webhooks/{id}/deliveries/{delivery}/redeliver", post(merchant_webhooks::redeliver))
        .route("/merchant/settings/domains", get(domains::list).post(domains::add))
        .route("/merchant/settings/domains/platform", post(domains::use_platform_address))
        .route("/merchant/settings/domains/{id}/verify", post(domains::verify))
        .route("/merchant/settings/domains/{id}/primary", post(domains::make_primary))
        .route("/merchant/settings/domains/{id}/delete", post(domains::remove))
        .route("/.well-known/ecom-verify/{token}", get(domains::well_known))
        .route("/merchant/settings/checkout", get(merchant_orders::settings).post(merchant_orders::save_settings))
        .route("/merchant/products", get(merchant_catalog::list))
        .route("/merchant/products/export", get(merchant_catalog::export))
        .route(
            "/merchant/products/import",
            get(merchant_catalog::import_form)
                .post(merchant_catalog::import)
                .layer(axum::extract::DefaultBodyLimit::max(merchant_catalog::MAX_IMPORT_BYTES)),
        )
        .route("/merchant/products/new", get(merchant_catalog::new_form).post(merchant_catalog::create))
        .route("/merchant/products/{id}", get(merchant_catalog::edit_form).post(merchant_catalog::update))
        .route("/merchant/products/{id}/status", post(merchant_catalog::set_status))
        .route("/merchant/collections", get(merchant_catalog::organise).post(merchant_catalog::create_collection))
        .route("/merchant/categories", post(merchant_catalog::create_category))
        .route("/merchant/theme", get(themes::index))
        .route("/merchant/theme/edit", get(themes::edit_form).post(themes::save))
        .route("/merchant/theme/publish", post(themes::publish))
        .route("/merchant/theme/preview", get(themes::preview))
        .route("/merchant/inventory", get(merchant_catalog::inventory).post(merchant_catalog::save_inventory))
        .route("/graphql", post(graphql::storefront).get(graphql::storefront_graphiql))
        .route("/merchant/graphql", post(graphql::merchant).get(graphql::merchant_graphiql))
        .route("/api/v1/inventory/levels", post(integrations::set_levels))
        .route("/api/v1/orders/{number}/tracking", post(integrations::add_tracking))
        .route("/static/graphiql/{file}", get(graphql::graphiql::asset))
        .route("/admin", get(dashboard::home))
        .route("/admin/dashboard/charts", get(dashboard::charts))
        .route("/admin/mailbox", get(admin::mailbox))
        .route("/admin/stores", get(admin_stores::list))
        .route("/admin/stores/{slug}/status", post(admin_stores::set_status))
        .route("/admin/stores/{slug}", get(admin_plans::detail))
        .route("/admin/stores/{slug}/plan", post(admin_plans::change_plan))
        .route("/admin/stores/{slug}/view-as", post(admin_plans::view_as))
        .route("/admin/plans", get(admin_plans::list).post(admin_plans::create))
        .route("/admin/plans/{code}", get(admin_plans::edit_form).post(admin_plans::update))
        .route("/admin/plans/{code}/delete", post(admin_plans::delete))
        .route("/admin/plans/{code}/default", post(admin_plans::make_default))
        .route("/merchant/view-as", get(admin_plans::open_view))
        .route("/admin/audit", get(admin_stores::audit))
        .route("/admin/dead-letters", get(dead_letters::admin_list))
        .route("/admin/dead-letters/{id}/{action}", post(dead_letters::admin_act))
        .route("/admin/notifications", get(notifications::admin_list))
        .route("/admin/notifications/{id}/retry", post(notifications::admin_retry))
        .route("/merchant/notifications", get(notifications::merchant_list))
        .route("/merchant/settings/notifications", get(notification_templates::list))
        .route(
            "/merchant/settings/notifications/{channel}/{name}",
            get(notification_templates::edit_form).post(notification_templates::act),
        )
        .route("/merchant/settings/notifications/{channel}/{name}/preview", post(notification_templates::preview))
        .route("/merchant/notifications/{id}/retry", post(notifications::merchant_retry))
        // Notification centre, preferences, unsubscribe, back in stock (issue 7).
        .route("/account/inbox", get(inbox::page))
        .route("/merchant/inbox", get(inbox::page))
        .route("/account/inbox/stream", get(inbox::stream))
        .route("/merchant/inbox/stream", get(inbox::stream))
        .route("/account/inbox/{id}/read", post(inbox::mark_read))
        .route("/merchant/inbox/{id}/read", post(inbox::mark_read))
        .route("/account/notifications", get(preferences::form).post(preferences::save))
        .route("/account/verify", get(preferences::verify))
        .route("/account/verify/resend", post(preferences::resend))
        .route("/unsubscribe/{token}", get(preferences::unsubscribe_page).post(preferences::unsubscribe))
        .route("/back-in-stock", post(preferences::request_restock))
        .route("/back-in-stock/{token}", get(preferences::confirm_page).post(preferences::confirm))
        .route("/merchant/dead-letters", get(dead_letters::merchant_list))
        .route("/merchant/dead-letters/{id}/{action}", post(dead_letters::merchant_act))
        .route("/merchant/settings/staff", get(staff::team))
        .route("/merchant/settings/staff/invite", get(staff::invite_form).post(staff::invite))
        .route("/merchant/settings/staff/invites/{id}/{action}", post(staff::invite_action))
        .route("/merchant/settings/staff/{id}", get(staff::member).post(staff::update_member))
        .route("/merchant/settings/staff/{id}/{action}", post(staff::member_action))
        .route("/merchant/invite", get(staff::accept_form).post(staff::accept))
        .fallback(site::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
        .layer(middleware::from_fn_with_state(state.clone(), telemetry::security_headers));
    // Shopper pages, served from the rendered-page cache when nobody is signed in.
    let shop = Router::new()
        .route("/", get(site::home))
        .route("/products", get(storefront::all_products))
        .route("/products/{handle}", get(storefront::product))
        .route("/collections", get(storefront::collections))
        .route("/collections/{handle}", get(storefront::collection))
        .route("/categories/{handle}", get(storefront::category))
        .route("/search", get(storefront::search))
        .route("/pages/{handle}", get(storefront::static_page))
        .route_layer(middleware::from_fn_with_state(state.clone(), storefront::page_cache))
        .layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
        .layer(middleware::from_fn_with_state(state.clone(), telemetry::security_headers));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/tls/ask", get(ops::tls_ask))
        .route("/metrics", get(ops::metrics));
    app.merge(shop)
        .merge(ops)
        .layer(middleware::from_fn_with_state(state.clone(), domains::redirect_to_primary))
        .layer(middleware::from_fn_with_state(state.clone(), telemetry::record_metrics))
        .layer(telemetry::trace_layer())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
