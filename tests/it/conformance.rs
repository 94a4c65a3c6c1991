//! The one `EventStore` and `TokenCache` conformance suite (`hookcatch::testing::conformance`) on
//! each store: the in-memory fake, the local SQLite store, and DynamoDB on moto.

use hookcatch::testing::conformance;
use hookcatch::testing::fakes::{MemoryStore, MemoryTokens};

use crate::hydration::local_store;
use crate::support::Stack;

#[tokio::test]
async fn the_in_memory_store_conforms() {
    let store = MemoryStore::default();
    conformance::events(&store, "raw").await;
    conformance::records(&store, "raw").await;
    conformance::tokens(&MemoryTokens::default(), "zoho").await;
}

#[tokio::test]
async fn the_local_sqlite_store_conforms() {
    let store = local_store();
    conformance::events(&store, "raw").await;
    conformance::records(&store, "raw").await;
    conformance::tokens(&store, "zoho").await;
}

#[tokio::test]
async fn dynamodb_conforms() {
    let stack = Stack::create(3).await;
    let store = stack.store();
    conformance::events(&store, "raw").await;
    conformance::records(&store, "raw").await;
    conformance::tokens(&store, "zoho").await;
}
