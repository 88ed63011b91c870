//! An order's life. Three independent dimensions, each with its own checked
//! transitions: where the goods are (`OrderStatus`), where the money is
//! (`PaymentStatus`), and whether they are coming back (`ReturnStatus`). A refund does
//! not undo a shipment, and a return does not by itself refund.

use serde::Serialize;

/// Where the order is in fulfilment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, stock held, waiting for the money.
    PendingPayment,
    Paid,
    PartiallyFulfilled,
    Fulfilled,
    Shipped,
    /// With the carrier's driver, arriving today.
    OutForDelivery,
    Delivered,
    Cancelled,
    /// Never paid in time; stock released.
    Expired,
}

/// Where the money is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    /// Held on the card, not yet taken.
    Authorized,
    Paid,
    PartiallyRefunded,
    Refunded,
    /// An authorisation released, or a payment that never came.
    Voided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    None,
    Requested,
    Received,
}

macro_rules! string_enum {
    ($ty:ty { $($variant:ident => $s:literal, $label:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $s),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$variant),)+ _ => None }
            }
            /// For people.
            pub fn label(&self) -> &'static str {
                match self { $(Self::$variant => $label),+ }
            }
            pub const ALL: &'static [$ty] = &[$(Self::$variant),+];
        }
    };
}

string_enum!(OrderStatus {
    PendingPayment => "pending_payment", "Pending payment",
    Paid => "paid", "Paid",
    PartiallyFulfilled => "partially_fulfilled", "Partially fulfilled",
    Fulfilled => "fulfilled", "Fulfilled",
    Shipped => "shipped", "Shipped",
    OutForDelivery => "out_for_delivery", "Out for delivery",
    Delivered => "delivered", "Delivered",
    Cancelled => "cancelled", "Cancelled",
    Expired => "expired", "Expired",
});

string_enum!(PaymentStatus {
    Pending => "pending", "Pending",
    Authorized => "authorized", "Authorised",
    Paid => "paid", "Paid",
    PartiallyRefunded => "partially_refunded", "Partially refunded",
    Refunded => "refunded", "Refunded",
    Voided => "voided", "Voided",
});

string_enum!(ReturnStatus {
    None => "none", "None",
    Requested => "requested", "Return requested",
    Received => "received", "Return received",
});

/// Something that happens to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    /// Money authorised (card held).
    Authorize,
    /// Money taken: by capture, by a card sale, or a merchant marking a manual order paid.
    Pay,
    /// Some lines shipped out of the warehouse (`all` when nothing is left).
    Fulfil {
        all: bool,
    },
    Ship,
    /// The carrier reports the parcel on its last leg.
    OutForDelivery,
    Deliver,
    Cancel,
    Expire,
    /// Money given back (`all` when nothing is left to refund).
    Refund {
        all: bool,
    },
    RequestReturn,
    /// Returned goods arrived back, whether or not a return was requested first.
    ReceiveReturn,
}

/// The state of an order across its three dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OrderState {
    pub status: OrderStatus,
    pub payment: PaymentStatus,
    pub returns: ReturnStatus,
}

impl OrderState {
    pub const PLACED: OrderState = OrderState {
        status: OrderStatus::PendingPayment,
        payment: PaymentStatus::Pending,
        returns: ReturnStatus::None,
    };

    /// The state after `action`, or why it is not allowed now (for the person who asked).
    pub fn apply(self, action: OrderAction) -> Result<OrderState, String> {
        use OrderStatus as S;
        use PaymentStatus as P;
        let mut next = self;
        let refuse = |what: &str| Err(format!("An order that is {} cannot be {what}.", self.describe()));
        let paid = matches!(self.payment, P::Paid | P::PartiallyRefunded);
        match action {
            OrderAction::Authorize => match (self.status, self.payment) {
                (S::PendingPayment, P::Pending) => next.payment = P::Authorized,
                _ => return refuse("authorised"),
            },
            OrderAction::Pay => match (self.status, self.payment) {
                (S::PendingPayment, P::Pending | P::Authorized) => (next.status, next.payment) = (S::Paid, P::Paid),
                _ => return refuse("marked paid"),
            },
            OrderAction::Fulfil { all } => match self.status {
                S::Paid | S::PartiallyFulfilled if paid => {
                    next.status = if all { S::Fulfilled } else { S::PartiallyFulfilled }
                }
                _ => return refuse("fulfilled"),
            },
            OrderAction::Ship => match self.status {
                S::Fulfilled | S::PartiallyFulfilled | S::Paid if paid => next.status = S::Shipped,
                _ => return refuse("shipped"),
            },
            OrderAction::OutForDelivery => match self.status {
                S::Shipped => next.status = S::OutForDelivery,
                _ => return refuse("marked out for delivery"),
            },
            OrderAction::Deliver => match self.status {
                S::Shipped | S::OutForDelivery => next.status = S::Delivered,
                _ => return refuse("marked delivered"),
            },
            OrderAction::Cancel => match self.status {
                S::PendingPayment | S::Paid | S::PartiallyFulfilled => {
                    next.status = S::Cancelled;
                    if matches!(self.payment, P::Pending | P::Authorized) {
                        next.payment = P::Voided;
                    }
                }
                _ => return refuse("cancelled"),
            },
            OrderAction::Expire => match (self.status, self.payment) {
                (S::PendingPayment, P::Pending | P::Authorized) => {
                    (next.status, next.payment) = (S::Expired, P::Voided)
                }
                _ => return refuse("expired"),
            },
            OrderAction::Refund { all } => match self.payment {
                P::Paid | P::PartiallyRefunded => next.payment = if all { P::Refunded } else { P::PartiallyRefunded },
                _ => return refuse("refunded"),
            },
            OrderAction::RequestReturn => match (self.status, self.returns) {
                (S::Shipped | S::Delivered | S::Fulfilled, ReturnStatus::None) => {
                    next.returns = ReturnStatus::Requested
                }
                _ => return refuse("returned"),
            },
            OrderAction::ReceiveReturn => match (self.status, self.returns) {
                (_, ReturnStatus::Requested)
                | (S::Shipped | S::OutForDelivery | S::Delivered | S::Fulfilled, ReturnStatus::None) => {
                    next.returns = ReturnStatus::Received
                }
                (_, ReturnStatus::Received) => return Err("A return was already recorded for this order.".into()),
                _ => return Err("Nothing was sent out for this order, so nothing can come back.".into()),
            },
        }
        Ok(next)
    }

    /// "pending payment", "shipped and partially refunded", …
    pub fn describe(&self) -> String {
        let mut s = self.status.label().to_lowercase();
        if !matches!(self.payment, PaymentStatus::Pending | PaymentStatus::Paid | PaymentStatus::Voided) {
            s.push_str(" and ");
            s.push_str(&self.payment.label().to_lowercase());
        }
        s
    }

    /// Whether an unpaid order's stock is still held (and may expire).
    pub fn holds_stock_unpaid(&self) -> bool {
        self.status == OrderStatus::PendingPayment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderAction as A;

    fn run(actions: &[OrderAction]) -> Result<OrderState, String> {
        actions.iter().try_fold(OrderState::PLACED, |s, a| s.apply(*a))
    }

    #[test]
    fn the_happy_path_runs_from_placed_to_delivered() {
        let s = run(&[A::Authorize, A::Pay, A::Fulfil { all: false }, A::Fulfil { all: true }, A::Ship, A::Deliver])
            .unwrap();
        assert_eq!((s.status, s.payment), (OrderStatus::Delivered, PaymentStatus::Paid));
    }

    #[test]
    fn transitions_out_of_order_are_refused_with_a_reason() {
        assert_eq!(
            run(&[A::Ship]).unwrap_err(),
            "An order that is pending payment cannot be shipped.",
            "no shipping before payment"
        );
        assert!(run(&[A::Pay, A::Pay]).is_err(), "paid twice");
        assert!(run(&[A::Pay, A::Ship, A::Cancel]).is_err(), "shipped orders are not cancelled");
        assert!(run(&[A::Refund { all: true }]).is_err(), "nothing to refund");
        assert!(run(&[A::Pay, A::RequestReturn]).is_err(), "nothing sent to return");
        assert!(run(&[A::Pay, A::Expire]).is_err(), "paid orders do not expire");
        assert!(run(&[A::Deliver]).is_err());
    }

    #[test]
    fn refunds_and_returns_run_beside_fulfilment() {
        let s =
            run(&[A::Pay, A::Ship, A::Refund { all: false }, A::Deliver, A::RequestReturn, A::ReceiveReturn]).unwrap();
        assert_eq!(s.status, OrderStatus::Delivered);
        assert_eq!(s.payment, PaymentStatus::PartiallyRefunded);
        assert_eq!(s.returns, ReturnStatus::Received);
        assert_eq!(s.describe(), "delivered and partially refunded");
        let s = run(&[A::Pay, A::Refund { all: false }, A::Refund { all: true }]).unwrap();
        assert_eq!(s.payment, PaymentStatus::Refunded);
        assert!(s.apply(A::Refund { all: false }).is_err());
    }

    #[test]
    fn cancelling_or_expiring_unpaid_orders_voids_the_payment() {
        let s = run(&[A::Authorize, A::Cancel]).unwrap();
        assert_eq!((s.status, s.payment), (OrderStatus::Cancelled, PaymentStatus::Voided));
        let s = run(&[A::Expire]).unwrap();
        assert_eq!((s.status, s.payment), (OrderStatus::Expired, PaymentStatus::Voided));
        // A paid order cancelled keeps its payment until it is refunded.
        let s = run(&[A::Pay, A::Cancel, A::Refund { all: true }]).unwrap();
        assert_eq!((s.status, s.payment), (OrderStatus::Cancelled, PaymentStatus::Refunded));
    }

    #[test]
    fn out_for_delivery_sits_between_shipped_and_delivered_and_a_return_is_recorded_once() {
        let s = run(&[A::Pay, A::Ship, A::OutForDelivery]).unwrap();
        assert_eq!(s.status, OrderStatus::OutForDelivery);
        assert!(s.apply(A::OutForDelivery).is_err(), "only once");
        let s = s.apply(A::Deliver).unwrap();
        assert_eq!(s.status, OrderStatus::Delivered);
        assert!(s.apply(A::OutForDelivery).is_err(), "not after delivery");
        // A return recorded without a request first; a second one is refused.
        let s = s.apply(A::ReceiveReturn).unwrap();
        assert_eq!(s.returns, ReturnStatus::Received);
        assert_eq!(s.apply(A::ReceiveReturn).unwrap_err(), "A return was already recorded for this order.");
        assert!(run(&[A::Pay, A::ReceiveReturn]).is_err(), "nothing was sent");
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(*s));
        }
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(OrderStatus::parse("nope"), None);
    }
}
