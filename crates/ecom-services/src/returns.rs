//! Returns and carrier updates: what a recorded return holds (which lines, how many,
//! checked against what was sent), and the delivery stages a carrier reports.

use crate::{Result, ServiceError};
use ecom_core::Invalid;
use ecom_store::orders::LineRow;
use uuid::Uuid;

/// The lines of a return and how many of each came back. `wanted` is `(line id,
/// quantity)`; empty means everything that was sent. A line may come back at most as
/// often as it was sent.
pub fn returned_lines<'a>(lines: &'a [LineRow], wanted: &[(Uuid, i32)]) -> Result<Vec<(&'a LineRow, i32)>> {
    if let Some((id, _)) = wanted.iter().find(|(id, _)| !lines.iter().any(|l| l.id == *id)) {
        return Err(Invalid::new("lines", format!("{id} is not a line of this order")).into());
    }
    let mut out = Vec::new();
    for line in lines {
        let q = if wanted.is_empty() {
            line.fulfilled
        } else {
            wanted.iter().filter(|(id, _)| *id == line.id).map(|(_, q)| *q).sum::<i32>()
        };
        if q < 0 || q > line.fulfilled {
            return Err(ServiceError::Invalid(Invalid::new(
                "quantity",
                format!("{}: {} sent, so at most {} can come back", line.title, line.fulfilled, line.fulfilled),
            )));
        }
        if q > 0 {
            out.push((line, q));
        }
    }
    if out.is_empty() {
        return Err(Invalid::new("quantity", "enter how many of each item came back").into());
    }
    Ok(out)
}

/// The timeline's words for a return: "Return received: 1 × Wool Hat; back in stock."
pub fn timeline_message(returned: &[(&LineRow, i32)], restocked: bool) -> String {
    let what: Vec<String> = returned.iter().map(|(l, q)| format!("{q} × {}", l.title)).collect();
    let tail = if restocked { "; back in stock." } else { " (not restocked)." };
    format!("Return received: {}{tail}", what.join(", "))
}

/// The `returned` and `restocked` fields of `order.return_received`.
pub fn event_data(returned: &[(&LineRow, i32)], restocked: bool) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = returned
        .iter()
        .map(|(l, q)| serde_json::json!({ "line_id": l.id, "variant_id": l.variant_id, "quantity": q }))
        .collect();
    serde_json::json!({ "returned": lines, "restocked": restocked })
}

/// A delivery stage a carrier reports with a tracking update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierStatus {
    /// Moving between depots: the order stays shipped.
    InTransit,
    OutForDelivery,
    Delivered,
}

impl CarrierStatus {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "in_transit" => Ok(Self::InTransit),
            "out_for_delivery" => Ok(Self::OutForDelivery),
            "delivered" => Ok(Self::Delivered),
            other => Err(Invalid::new(
                "status",
                format!("\"{other}\" is not a delivery status; use in_transit, out_for_delivery or delivered"),
            )
            .into()),
        }
    }

    /// How far along an order in `status` already is for this stage (so a repeated
    /// or late report changes nothing): 0 not yet shipped, 1 shipped, 2 out for
    /// delivery, 3 delivered.
    pub fn rank(self) -> u8 {
        match self {
            Self::InTransit => 1,
            Self::OutForDelivery => 2,
            Self::Delivered => 3,
        }
    }
}

/// The stage an order status stands for, on the same scale as [`CarrierStatus::rank`].
pub fn stage_of(status: &str) -> u8 {
    match status {
        "shipped" => 1,
        "out_for_delivery" => 2,
        "delivered" => 3,
        _ => 0,
    }
}
