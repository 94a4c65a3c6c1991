//! The consumer Lambda: SQS batches → hydrate id-only events → DynamoDB; scheduled renewals.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hookcatch::runtime::logging::LambdaLogging::from_env(&|name| std::env::var(name).ok()).init();
    let metrics = hookcatch::metrics::Emf::install()?;
    let consumer =
        hookcatch::runtime::lambda::consumer_from_env(&|name| std::env::var(name).ok()).await?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| async {
        let response = hookcatch_consumer::handle_any(&consumer, event).await;
        metrics.flush();
        response
    }))
    .await
}
