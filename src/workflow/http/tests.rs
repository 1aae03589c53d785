//! Tests of the load path's HTTP client: framing and encoding, then the client
//! against raw servers on loopback.

use super::*;

fn head(buf: &[u8]) -> Head {
    parse_head(buf, false).unwrap().expect("complete head")
}

#[test]
fn framing_follows_rfc_9112() {
    let h = head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
    assert_eq!(
        (h.framing, h.keep_alive, h.len),
        (Framing::Length(5), true, 38)
    );
    let h = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n");
    assert_eq!(h.framing, Framing::Chunked);
    let h = head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n");
    assert_eq!(h.framing, Framing::UntilClose);
    let h = head(b"HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n");
    assert_eq!(h.framing, Framing::None);
    let h = head(b"HTTP/1.1 200 OK\r\nConnection: Close\r\ncontent-length: 0\r\n\r\n");
    assert_eq!((h.framing, h.keep_alive), (Framing::None, false));
    let h = head(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n");
    assert!(!h.keep_alive);
    let h = head(b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\n");
    assert!(h.keep_alive);
    let h = head(b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(h.framing, Framing::UntilClose);
    let h = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true)
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, Framing::None);
}

#[test]
fn bad_heads_are_other_and_partial_ones_wait() {
    assert!(
        parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", false)
            .unwrap()
            .is_none()
    );
    for bad in [
        &b"garbage\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1 2\r\n\r\n",
    ] {
        assert_eq!(
            parse_head(bad, false).err(),
            Some(FailureKind::Other),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn requests_are_encoded_with_host_and_length() {
    let get = Encoded::new(&Parts {
        method: &Method::GET,
        target: "/a?b=1",
        authority: "127.0.0.1:80",
        headers: &[],
        content_type: None,
        body: b"",
    });
    assert_eq!(
        get.as_bytes(),
        b"GET /a?b=1 HTTP/1.1\r\nhost: 127.0.0.1:80\r\n\r\n"
    );
    let post = Encoded::new(&Parts {
        method: &Method::POST,
        target: "/w",
        authority: "h:1",
        headers: &[("Host", b"vhost"), ("x-a", b"1")],
        content_type: Some("application/json"),
        body: b"{}",
    });
    assert_eq!(
        post.as_bytes(),
        &b"POST /w HTTP/1.1\r\ncontent-type: application/json\r\nHost: vhost\r\nx-a: 1\r\n\
content-length: 2\r\n\r\n{}"[..]
    );
    let empty_post = Encoded::new(&Parts {
        method: &Method::POST,
        target: "/",
        authority: "h",
        headers: &[],
        content_type: None,
        body: b"",
    });
    assert!(
        empty_post
            .as_bytes()
            .ends_with(b"content-length: 0\r\n\r\n")
    );
}

#[test]
fn endpoints_of_base_urls() {
    let e = Endpoint::of("http://[::1]:8080/prefix/").unwrap();
    assert_eq!((e.host.as_str(), e.port), ("::1", 8080));
    assert_eq!(
        (e.authority.as_str(), e.path_prefix.as_str()),
        ("[::1]:8080", "/prefix")
    );
    let e = Endpoint::of("http://localhost").unwrap();
    assert_eq!((e.port, e.path_prefix.as_str()), (80, ""));
    assert!(Endpoint::of("https://x").is_none());
    assert!(Endpoint::of("not a url").is_none());
}

mod wire {
    //! The client against raw servers on loopback: reuse, stale connections,
    //! chunked bodies with trailers, interim responses, bodies read to close.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server answering every request on a connection with `reply`, closing
    /// after each when `close_after`; returns its URL and its accept count.
    async fn server(reply: &'static [u8], close_after: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepts = Arc::new(AtomicUsize::new(0));
        let counted = accepts.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            if s.write_all(reply).await.is_err() || close_after {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        (url, accepts)
    }

    async fn get(client: &HttpClient, want_body: bool) -> Result<Response, SendError> {
        let ep = client.endpoint().clone();
        let req = Encoded::new(&Parts {
            method: &Method::GET,
            target: "/x",
            authority: &ep.authority,
            headers: &[],
            content_type: None,
            body: b"",
        });
        client
            .send(&req, want_body, Instant::now() + Duration::from_secs(5))
            .await
    }

    fn client(url: &str) -> HttpClient {
        HttpClient::new(Endpoint::of(url).unwrap(), 8, 1 << 20)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_kept_alive_connection_is_reused_and_a_chunked_body_decoded() {
        let (url, accepts) = server(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
            false,
        )
        .await;
        let c = client(&url);
        for _ in 0..3 {
            let r = get(&c, true).await.unwrap();
            assert_eq!(
                (r.status, &r.body[..]),
                (StatusCode::OK, &b"hello world"[..])
            );
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 1);
        // Not asked for, the body is read (the connection stays usable) but not kept.
        assert!(get(&c, false).await.unwrap().body.is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_the_server_closed_while_idle_is_not_reused() {
        let (url, accepts) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", true).await;
        let c = client(&url);
        for _ in 0..3 {
            assert_eq!(get(&c, true).await.unwrap().body, &b"ok"[..]);
            // Let the server's FIN arrive before the next checkout.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_interim_response_is_skipped() {
        let (url, _) = server(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nabc",
            false,
        )
        .await;
        let r = get(&client(&url), true).await.unwrap();
        assert_eq!((r.status, &r.body[..]), (StatusCode::CREATED, &b"abc"[..]));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_without_length_is_read_to_close_and_the_connection_dropped() {
        let (url, accepts) = server(b"HTTP/1.1 200 OK\r\n\r\nuntil close", true).await;
        let c = client(&url);
        for _ in 0..2 {
            assert_eq!(get(&c, true).await.unwrap().body, &b"until close"[..]);
        }
        assert_eq!(accepts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_body_over_the_cap_is_other_and_a_short_one_connect() {
        let (url, _) = server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789",
            false,
        )
        .await;
        let small = HttpClient::new(Endpoint::of(&url).unwrap(), 8, 9);
        assert_eq!(
            get(&small, false).await.err(),
            Some(SendError::Failed(FailureKind::Other))
        );
        let (url, _) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234", true).await;
        assert_eq!(
            get(&client(&url), true).await.err(),
            Some(SendError::Failed(FailureKind::Connect))
        );
    }
}

#[test]
fn envoys_overflow_mark_is_read_from_the_head() {
    let h = head(b"HTTP/1.1 503 Service Unavailable\r\nx-envoy-overloaded: true\r\ncontent-length: 0\r\n\r\n");
    assert!(h.overloaded);
    let h = head(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    assert!(!h.overloaded);
}
