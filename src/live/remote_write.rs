//! A `Frame` as a Prometheus remote write 1.0 request: the protobuf `WriteRequest`
//! (prometheus/prompb `remote.proto` and `types.proto`, as prost messages), snappy
//! block-compressed, and the POST that carries it with the protocol's headers.

use std::time::{Duration, SystemTime};

use prost::Message;

use super::series::{Frame, Kind};

/// `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: labels sorted by name, `__name__` among them.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`: a value at a time, milliseconds since the Unix epoch.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`: a family's type and help.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// `MetricType`: 1 counter, 2 gauge, 3 histogram.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// `frame`'s samples, each a time series with one sample at `at_ms`.
pub fn write_request(frame: &Frame, at_ms: i64) -> WriteRequest {
    let timeseries = frame
        .families
        .iter()
        .flat_map(|f| &f.samples)
        .map(|s| {
            let mut labels: Vec<Label> = std::iter::once(("__name__", s.name.as_str()))
                .chain(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map(|(name, value)| Label {
                    name: name.into(),
                    value: value.into(),
                })
                .collect();
            labels.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                labels,
                samples: vec![Sample {
                    value: s.value,
                    timestamp: at_ms,
                }],
            }
        })
        .collect();
    let metadata = frame
        .families
        .iter()
        .map(|f| MetricMetadata {
            r#type: match f.kind {
                Kind::Counter => 1,
                Kind::Gauge => 2,
                Kind::Histogram => 3,
            },
            metric_family_name: f.name.clone(),
            help: f.help.into(),
            unit: String::new(),
        })
        .collect();
    WriteRequest {
        timeseries,
        metadata,
    }
}

/// The request body: `frame` at `at_ms`, protobuf, snappy block format (not framed).
pub fn encode(frame: &Frame, at_ms: i64) -> Vec<u8> {
    let proto = write_request(frame, at_ms).encode_to_vec();
    snap::raw::Encoder::new()
        .compress_vec(&proto)
        .expect("snappy compresses any input below 4 GiB")
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How long one push may take before it counts as failed.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends remote write requests to one URL.
#[derive(Clone)]
pub struct Pusher {
    client: reqwest::Client,
    url: url::Url,
    /// The URL as shown in messages (a password replaced by `***`).
    pub shown: String,
}

impl Pusher {
    /// A pusher to `url` (http or https; user and password in the URL become basic auth).
    pub fn new(url: url::Url) -> Result<Pusher, String> {
        let client = reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .user_agent(concat!("slo-check/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Pusher {
            client,
            shown: redact(&url),
            url,
        })
    }

    /// Push `frame` at `at_ms`; an error says what answered (status and body) or why
    /// nothing did.
    pub async fn push(&self, frame: &Frame, at_ms: i64) -> Result<(), String> {
        let mut url = self.url.clone();
        let user = url.username().to_string();
        let password = url.password().map(str::to_string);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let mut request = self
            .client
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(encode(frame, at_ms));
        if !user.is_empty() {
            request = request.basic_auth(user, password);
        }
        let response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body = body.trim();
        Err(if body.is_empty() {
            format!("HTTP {status}")
        } else {
            format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            )
        })
    }
}

/// A reqwest error as its cause says it (reqwest's own message is "error sending request
/// for url (…)", and the URL is in every message already).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!(
            "no answer within {}",
            crate::units::format_duration(PUSH_TIMEOUT)
        );
    }
    let mut innermost = None;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    let what = innermost.unwrap_or_else(|| e.to_string());
    if e.is_connect() {
        format!("cannot connect: {what}")
    } else {
        what
    }
}

/// `url` with its password replaced by `***`.
pub fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::series::{Now, Tally};
    use crate::stats::record::{Event, Outcome, StepSample, WorkflowRecord};

    #[test]
    fn the_body_decodes_back_to_every_sample_of_the_frame() {
        let mut tally = Tally::new("spike", "spike-7", vec!["submit".into()]);
        tally.add(&Event::Workflow(WorkflowRecord {
            seq: 0,
            intended_us: 0,
            lag_us: 10,
            end_us: 42_000,
            outcome: Outcome::Succeeded,
            steps: vec![StepSample {
                step: 0,
                latency_us: 42_000,
                ok: true,
            }],
            subset: None,
        }));
        let frame = tally.frame(Now {
            started: 1,
            ..Now::default()
        });
        let body = encode(&frame, 1_700_000_000_123);
        // Snappy's raw block format, as remote write requires (not the framed stream).
        let proto = snap::raw::Decoder::new().decompress_vec(&body).unwrap();
        let request = WriteRequest::decode(proto.as_slice()).unwrap();
        let samples: usize = frame.families.iter().map(|f| f.samples.len()).sum();
        assert_eq!(request.timeseries.len(), samples);
        assert_eq!(request.metadata.len(), frame.families.len());
        for ts in &request.timeseries {
            let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted, "labels sorted by name");
            assert!(names.contains(&"testid") && names.contains(&"scenario"));
            assert_eq!(ts.samples.len(), 1);
            assert_eq!(ts.samples[0].timestamp, 1_700_000_000_123);
        }
        let value = |name: &str, extra: Option<(&str, &str)>| {
            request
                .timeseries
                .iter()
                .find(|ts| {
                    ts.labels
                        .iter()
                        .any(|l| l.name == "__name__" && l.value == name)
                        && extra.is_none_or(|(k, v)| {
                            ts.labels.iter().any(|l| l.name == k && l.value == v)
                        })
                })
                .map(|ts| ts.samples[0].value)
        };
        assert_eq!(value("slo_check_workflows_started_total", None), Some(1.0));
        assert_eq!(
            value(
                "slo_check_step_duration_seconds_bucket",
                Some(("le", "0.05"))
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                "slo_check_step_duration_seconds_bucket",
                Some(("le", "0.025"))
            ),
            Some(0.0)
        );
        assert_eq!(
            value("slo_check_workflow_duration_seconds_sum", None),
            Some(0.042)
        );
        let histogram = request
            .metadata
            .iter()
            .find(|m| m.metric_family_name == "slo_check_step_duration_seconds")
            .unwrap();
        assert_eq!(histogram.r#type, 3);
    }

    #[test]
    fn a_password_is_never_shown() {
        let url = url::Url::parse("https://me:secret@example.test/api/v1/push").unwrap();
        assert_eq!(redact(&url), "https://me:***@example.test/api/v1/push");
    }
}
