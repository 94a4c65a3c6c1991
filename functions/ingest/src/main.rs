//! One binary for every route Lambda; `HOOKCATCH_ROUTE` says which route this function is.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let metrics = hookcatch::metrics::Emf::install()?;
    let ingestor = hookcatch::aws::ingestor_from_env(&|name| std::env::var(name).ok()).await?;
    lambda_http::run(lambda_http::service_fn(|request| async {
        let response = hookcatch_ingest::handle(&ingestor, request).await;
        metrics.flush();
        response
    }))
    .await
}
