//! Query cost and throttling for the GraphQL APIs, as Shopify's Admin API does it:
//! each query's cost is calculated before it runs (a field costs 1, a connection
//! `first` times what one of its nodes costs), taken from leaky buckets for the
//! client and for the store, and reported in `extensions.cost`:
//!
//! ```json
//! "extensions": { "cost": { "requestedQueryCost": 42, "actualQueryCost": 42,
//!   "throttleStatus": { "maximumAvailable": 10000, "currentlyAvailable": 9958, "restoreRate": 1000 } } }
//! ```
//!
//! A query that does not fit is refused before it runs with code `THROTTLED`
//! (`actualQueryCost: null`): the client waits `cost / restoreRate` seconds.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Name, Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};
use ecom_services::ratelimit::{BucketSize, CostBuckets, ThrottleStatus};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// What a request is charged to: the buckets (client first, then store).
pub struct Meter {
    pub buckets: CostBuckets,
    pub keys: Vec<(String, BucketSize)>,
}

/// Installs cost metering in a schema; requests without a [`Meter`] are not metered.
pub struct CostMeter;

impl ExtensionFactory for CostMeter {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Metering::default())
    }
}

#[derive(Default)]
struct Metering {
    /// The operation the request names, if any.
    operation: Mutex<Option<String>>,
    /// (requested cost, whether it ran, the client's bucket after).
    outcome: Mutex<Option<(usize, bool, Option<ThrottleStatus>)>>,
}

/// Keeps only the named operation and the fragments it uses. Clients such as
/// graphql_client send a whole document of operations with the name of the one to
/// run; async-graphql would count all of them in the cost (and validate them all).
fn only_operation(doc: &mut ExecutableDocument, name: &str) {
    let DocumentOperations::Multiple(ops) = &mut doc.operations else { return };
    if !ops.contains_key(name) {
        return; // async-graphql reports the unknown operation
    }
    ops.retain(|n, _| n.as_str() == name);
    let mut used: HashSet<Name> = HashSet::new();
    let mut pending: Vec<&SelectionSet> = ops.values().map(|op| &op.node.selection_set.node).collect();
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => pending.push(&f.node.selection_set.node),
                Selection::InlineFragment(f) => pending.push(&f.node.selection_set.node),
                Selection::FragmentSpread(s) => {
                    let name = &s.node.fragment_name.node;
                    if used.insert(name.clone())
                        && let Some(def) = doc.fragments.get(name)
                    {
                        pending.push(&def.node.selection_set.node);
                    }
                }
            }
        }
    }
    doc.fragments.retain(|n, _| used.contains(n));
}

#[async_trait::async_trait]
impl Extension for Metering {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.operation.lock().unwrap_or_else(PoisonError::into_inner).clone_from(&request.operation_name);
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let mut doc = next.run(ctx, query, variables).await?;
        let name = self.operation.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(name) = name {
            only_operation(&mut doc, &name);
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let Some(meter) = ctx.data_opt::<Meter>() else { return Ok(result) };
        let keys: Vec<(&str, BucketSize)> = meter.keys.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        let cost = result.complexity.max(1);
        let (taken, status) = meter.buckets.take(&keys, cost as f64);
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some((cost, taken, status));
        if taken {
            return Ok(result);
        }
        metrics::counter!("ecom_graphql_throttled_total").increment(1);
        let mut e = ServerError::new(
            format!(
                "Throttled: this query costs {cost} points and the budget has fewer left; \
                 it refills at the restoreRate in extensions.cost. Ask for fewer fields or smaller pages, or wait."
            ),
            None,
        );
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", "THROTTLED");
        e.extensions = Some(ext);
        Err(vec![e])
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        let outcome = *self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((cost, ran, status)) = outcome else { return response };
        let report = serde_json::json!({
            "requestedQueryCost": cost,
            "actualQueryCost": if ran { Some(cost) } else { None },
            "throttleStatus": status,
        });
        response.extension("cost", Value::from_json(report).unwrap_or(Value::Null))
    }
}
