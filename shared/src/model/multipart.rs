//! A readable summary of multipart/form-data bodies: each part's field name, file name, type, size
//! and hash, and the value of small text fields. The exact bytes stay in the stored body.

use std::convert::Infallible;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::model::request::sha256_hex;

/// Largest text field value copied into the summary.
const MAX_INLINE_FIELD: usize = 4096;
/// Most parts summarised, and the summary's largest JSON text: it is stored beside the event, in
/// a DynamoDB item of at most 400 KB. Beyond either, the summary is an error naming the count.
pub const MAX_PARTS: usize = 1000;
pub const MAX_SUMMARY_BYTES: usize = 64 * 1024;

/// `None` when the content type is not multipart; `Some(Err)` when it claims to be and is not.
pub async fn summarize(content_type: Option<&str>, body: &Bytes) -> Option<Result<Value, String>> {
    let content_type = content_type?;
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/")
    {
        return None;
    }
    Some(parse(content_type, body.clone()).await)
}

async fn parse(content_type: &str, body: Bytes) -> Result<Value, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    let (mut count, mut summary_bytes) = (0usize, 2usize);
    while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
        count += 1;
        if count > MAX_PARTS || summary_bytes > MAX_SUMMARY_BYTES {
            continue; // counted, not summarised: the bytes stay in the stored body
        }
        let name = field.name().map(str::to_owned);
        let file_name = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.to_string());
        let data = field.bytes().await.map_err(|e| e.to_string())?;
        let mut part = json!({
            "name": name,
            "size": data.len(),
            "sha256": sha256_hex(&data),
        });
        if let Some(file_name) = file_name {
            part["file_name"] = json!(file_name);
        } else if data.len() <= MAX_INLINE_FIELD
            && let Ok(text) = std::str::from_utf8(&data)
        {
            part["value"] = json!(text);
        }
        if let Some(content_type) = content_type {
            part["content_type"] = json!(content_type);
        }
        summary_bytes += part.to_string().len() + 1;
        parts.push(part);
    }
    if count > MAX_PARTS || summary_bytes > MAX_SUMMARY_BYTES {
        return Err(format!(
            "{count} parts: a summary lists at most {MAX_PARTS} parts in {} KiB (the body is kept whole)",
            MAX_SUMMARY_BYTES / 1024
        ));
    }
    Ok(Value::Array(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_fields_and_files() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"a.bin\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\x00\x01\x02\r\n--XyZ--\r\n",
        );
        let summary = summarize(Some("multipart/form-data; boundary=XyZ"), &body)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(summary[0]["name"], "note");
        assert_eq!(summary[0]["value"], "hello");
        assert_eq!(summary[1]["file_name"], "a.bin");
        assert_eq!(summary[1]["size"], 3);
        assert_eq!(summary[1]["sha256"], sha256_hex(b"\x00\x01\x02"));
        assert!(
            summary[1].get("value").is_none(),
            "file contents stay in the raw body"
        );
    }

    #[tokio::test]
    async fn many_parts_are_counted_not_summarised() {
        let mut body = Vec::new();
        for _ in 0..200_000 {
            body.extend_from_slice(
                b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n\r\n",
            );
        }
        body.extend_from_slice(b"--b--\r\n");
        let summary = summarize(Some("multipart/form-data; boundary=b"), &Bytes::from(body)).await;
        let Some(Err(reason)) = summary else {
            panic!("expected the too-many-parts error, got {summary:?}");
        };
        assert!(reason.starts_with("200000 parts"), "{reason}");
        // Large fields fill the byte budget before the part budget.
        let mut body = Vec::new();
        let value = "v".repeat(4000);
        for _ in 0..20 {
            body.extend_from_slice(
                format!("--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(b"--b--\r\n");
        let summary = summarize(Some("multipart/form-data; boundary=b"), &Bytes::from(body)).await;
        assert!(matches!(summary, Some(Err(reason)) if reason.starts_with("20 parts")));
    }

    #[tokio::test]
    async fn non_multipart_is_none_and_broken_multipart_is_an_error() {
        assert!(
            summarize(Some("application/json"), &Bytes::new())
                .await
                .is_none()
        );
        assert!(summarize(None, &Bytes::new()).await.is_none());
        let broken = summarize(Some("multipart/form-data"), &Bytes::from_static(b"x")).await;
        assert!(matches!(broken, Some(Err(_))));
    }
}
