//! One binary for every route Lambda; `HOOKCATCH_ROUTE` says which route this function is.

use hookcatch_ingest::FunctionUrlPayload;
use lambda_http::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hookcatch::runtime::logging::LambdaLogging::from_env(&|name| std::env::var(name).ok()).init();
    let metrics = hookcatch::metrics::Emf::install()?;
    let ingestor =
        hookcatch::runtime::lambda::ingestor_from_env(&|name| std::env::var(name).ok()).await?;
    lambda_http::lambda_runtime::run(service_fn(|event: LambdaEvent<FunctionUrlPayload>| async {
        let response = hookcatch_ingest::handle(&ingestor, event.payload.0).await;
        metrics.flush();
        response.map_err(lambda_http::Error::from)
    }))
    .await
}
