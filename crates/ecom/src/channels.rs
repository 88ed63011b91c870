//! Wiring of the SMS, WhatsApp and Web Push channels and the services behind the
//! phone form and the push buttons.

use crate::config::Config;
use ecom_notify::{Channel, Channels, DevTextChannel, SMS, Vapid, WHATSAPP};
use ecom_services::Outbound;
use ecom_store::Db;
use std::sync::Arc;

/// The platform's VAPID key handle (configured, or kept in the database sealed under
/// `secret`, the platform secret). One per process: the push channel and the
/// subscription service share it, so the stored key is read once.
pub fn vapid(config: &Config, db: &Db, secret: &str) -> anyhow::Result<Vapid> {
    let key = config.vapid_private_key.as_ref().map(|s| s.0.as_str());
    Vapid::new(db.clone(), key, &config.vapid_subject(), secret.as_bytes())
        .map_err(|e| anyhow::anyhow!("ECOM_VAPID_PRIVATE_KEY: {e}"))
}

/// Adds SMS (Twilio, else the dev mailbox), WhatsApp (Cloud API, else the dev
/// mailbox) and Web Push (through the webhooks' SSRF-guarded client) to `channels`.
pub fn add(config: &Config, db: &Db, vapid: &Vapid, channels: Channels) -> anyhow::Result<Channels> {
    let sms: Arc<dyn Channel> = match config.twilio() {
        Some(settings) => Arc::new(ecom_notify::TwilioChannel::new(settings?).map_err(|e| anyhow::anyhow!(e))?),
        None => Arc::new(DevTextChannel::new(db.clone(), SMS)),
    };
    let whatsapp: Arc<dyn Channel> = match config.whatsapp() {
        Some(settings) => Arc::new(ecom_notify::WhatsAppChannel::new(settings?).map_err(|e| anyhow::anyhow!(e))?),
        None => Arc::new(DevTextChannel::new(db.clone(), WHATSAPP)),
    };
    let outbound = Outbound::new(config.allow_private_network).map_err(|e| anyhow::anyhow!(e))?;
    let guard = outbound.clone();
    let allow_private = config.allow_private_network;
    let check: ecom_notify::webpush::EndpointCheck = Arc::new(move |url| {
        // Push services are public https hosts; plain http only with private networks
        // allowed (tests on loopback). Host names are checked again as they resolve.
        if url.scheme() != "https" && !allow_private {
            return Err("push services are reached over https".into());
        }
        guard.check_url(url).map_err(|e| e.to_string())
    });
    let push = ecom_notify::WebPushChannel::new(db.clone(), vapid.clone(), outbound.client().clone(), check);
    Ok(channels
        .with(sms, config.notify_sms_per_sec)
        .with(whatsapp, config.notify_whatsapp_per_sec)
        .with(Arc::new(push), config.notify_push_per_sec))
}

/// The phone verification and push subscription services of the web layer.
pub fn services(
    config: &Config,
    db: &Db,
    outbound: &Outbound,
    vapid: &Vapid,
) -> anyhow::Result<(ecom_services::channels::Phones, ecom_services::channels::PushSubscriptions)> {
    Ok((
        ecom_services::channels::Phones::new(db.clone(), config.twilio().is_some()),
        ecom_services::channels::PushSubscriptions::new(db.clone(), outbound.clone(), vapid.clone()),
    ))
}
