//! Unit tests of the client's URI parsing, error classification and failure handling, against
//! a tiny fake Thrift server on loopback (the real metastore is exercised in tests/metastore.rs).

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TListIdentifier,
    TMessageIdentifier, TMessageType, TOutputProtocol, TStructIdentifier, TType,
};

use super::*;
use crate::Origin;

#[test]
fn parses_uri_lists() {
    let uris = parse_uris("thrift://a:1, thrift://b ,thrift://[::1]:9084,").expect("parse");
    assert_eq!(
        uris,
        vec![
            MetastoreUri {
                host: "a".into(),
                port: 1
            },
            MetastoreUri {
                host: "b".into(),
                port: DEFAULT_PORT
            },
            MetastoreUri {
                host: "::1".into(),
                port: 9084
            },
        ]
    );
    assert_eq!(uris[2].to_string(), "thrift://[::1]:9084");
    for bad in [
        "",
        " , ",
        "http://a:1",
        "thrift://",
        "a:9083",
        "thrift://a:1/db",
    ] {
        let err = parse_uris(bad).expect_err(bad);
        assert!(matches!(err, HiveError::InvalidUri { .. }), "{bad}: {err}");
        assert_eq!(err.origin(), Origin::User);
    }
}

fn closed_port() -> MetastoreUri {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    MetastoreUri {
        host: "127.0.0.1".into(),
        port,
    }
}

#[derive(Clone, Copy)]
enum Answer {
    /// get_partition_names -> ["dt=1"], anything else -> NoSuchObjectException (field 1 or 2)
    Normal,
    /// Reads the request and never answers.
    Silent,
}

/// A fake metastore serving `conns` connections, `per_conn` calls each, then closing them.
fn fake_server(conns: usize, per_conn: usize, answer: Answer) -> MetastoreUri {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    thread::spawn(move || {
        for _ in 0..conns {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let Ok(write_half) = stream.try_clone() else {
                return;
            };
            let mut i = TBinaryInputProtocol::new(stream, true);
            let mut o = TBinaryOutputProtocol::new(write_half, true);
            for _ in 0..per_conn {
                if serve_one(&mut i, &mut o, answer).is_err() {
                    break;
                }
            }
        }
    });
    MetastoreUri {
        host: "127.0.0.1".into(),
        port,
    }
}

fn serve_one(
    i: &mut dyn TInputProtocol,
    o: &mut dyn TOutputProtocol,
    answer: Answer,
) -> thrift::Result<()> {
    let m = i.read_message_begin()?;
    i.skip(TType::Struct)?;
    i.read_message_end()?;
    if let Answer::Silent = answer {
        // Hold the connection until the client gives up and closes it.
        return i.read_byte().map(|_| ());
    }
    o.write_message_begin(&TMessageIdentifier::new(
        m.name.clone(),
        TMessageType::Reply,
        m.sequence_number,
    ))?;
    o.write_struct_begin(&TStructIdentifier::new("result"))?;
    let field = |ty, id| TFieldIdentifier::new::<Option<String>, String, i16>(None, ty, id);
    if m.name == "get_partition_names" {
        o.write_field_begin(&field(TType::List, 0))?;
        o.write_list_begin(&TListIdentifier::new(TType::String, 1))?;
        o.write_string("dt=1")?;
        o.write_list_end()?;
    } else {
        // NoSuchObjectException: field 2 of get_table's result, 1 of drop_table's.
        let id = if m.name == "get_table" { 2 } else { 1 };
        o.write_field_begin(&field(TType::Struct, id))?;
        o.write_struct_begin(&TStructIdentifier::new("NoSuchObjectException"))?;
        o.write_field_begin(&field(TType::String, 1))?;
        o.write_string("no such table")?;
        o.write_field_end()?;
        o.write_field_stop()?;
        o.write_struct_end()?;
    }
    o.write_field_end()?;
    o.write_field_stop()?;
    o.write_struct_end()?;
    o.write_message_end()?;
    o.flush()
}

fn config(uris: Vec<MetastoreUri>) -> MetastoreConfig {
    MetastoreConfig {
        connect_timeout: Duration::from_secs(2),
        io_timeout: Duration::from_secs(5),
        retries: 0,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        ..MetastoreConfig::new(uris)
    }
}

#[test]
fn fails_over_to_the_next_uri_and_stays_there() {
    let good = fake_server(1, 2, Answer::Normal);
    let mut client = MetastoreClient::new(config(vec![closed_port(), good.clone()])).expect("new");
    let names = client.get_partition_names("d", "t", -1).expect("call");
    assert_eq!(names, vec!["dt=1"]);
    assert_eq!(client.current_uri(), &good);
    // Same connection for the next call (the fake accepts only one).
    assert_eq!(
        client.get_partition_names("d", "t", -1).expect("call"),
        names
    );
}

#[test]
fn replaces_a_stale_connection_without_failing_the_call() {
    // Each connection serves one call and is then closed by the server.
    let uri = fake_server(3, 1, Answer::Normal);
    let mut client = MetastoreClient::new(config(vec![uri])).expect("new");
    for _ in 0..3 {
        assert_eq!(
            client.get_partition_names("d", "t", -1).expect("call"),
            vec!["dt=1"]
        );
    }
}

#[test]
fn declared_exceptions_are_typed_and_keep_the_connection() {
    let uri = fake_server(1, 2, Answer::Normal);
    let mut client = MetastoreClient::new(config(vec![uri.clone()])).expect("new");
    let err = client.get_table("d", "t").expect_err("no such table");
    assert!(err.is_no_such_object(), "{err}");
    assert_eq!(err.origin(), Origin::User);
    let text = err.to_string();
    assert!(text.contains("get_table of table `d`.`t`"), "{text}");
    assert!(
        text.contains("NoSuchObjectException: no such table"),
        "{text}"
    );
    assert!(text.contains(&uri.to_string()), "{text}");
    assert_eq!(client.get_table_if_exists("d", "t").expect("ok"), None);
}

#[test]
fn a_silent_server_times_out() {
    let uri = fake_server(1, 1, Answer::Silent);
    let mut cfg = config(vec![uri]);
    cfg.io_timeout = Duration::from_millis(300);
    let mut client = MetastoreClient::new(cfg).expect("new");
    let start = Instant::now();
    let err = client
        .get_partition_names("d", "t", -1)
        .expect_err("timeout");
    assert!(start.elapsed() < Duration::from_secs(5));
    let HiveError::Unavailable { last, attempts, .. } = &err else {
        panic!("unexpected {err}");
    };
    assert_eq!(*attempts, 1);
    assert!(matches!(**last, HiveError::Transport { .. }), "{last}");
    assert!(err.to_string().contains("timed out after 300ms"), "{err}");
    assert_eq!(err.origin(), Origin::External);
}

#[test]
fn gives_up_after_the_configured_rounds() {
    let mut cfg = config(vec![closed_port(), closed_port()]);
    cfg.retries = 2;
    let mut client = MetastoreClient::new(cfg).expect("new");
    let err = client.drop_table("d", "t", false).expect_err("unavailable");
    match &err {
        HiveError::Unavailable {
            attempts, target, ..
        } => {
            assert_eq!(*attempts, 6);
            assert_eq!(target.table.as_deref(), Some("t"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(err.origin(), Origin::External);
}

#[test]
fn origins_of_remote_errors() {
    let remote = |kind| HiveError::Remote {
        uri: "thrift://h:1".into(),
        call: "create_table",
        target: Target::default(),
        kind,
        message: String::new(),
    };
    assert_eq!(
        remote(RemoteErrorKind::AlreadyExists).origin(),
        Origin::User
    );
    assert_eq!(
        remote(RemoteErrorKind::InvalidObject).origin(),
        Origin::User
    );
    assert_eq!(remote(RemoteErrorKind::Meta).origin(), Origin::External);
    let app = |kind| HiveError::Application {
        uri: "thrift://h:1".into(),
        call: "create_table",
        target: Target::default(),
        kind,
        message: String::new(),
    };
    assert_eq!(
        app(ApplicationErrorKind::UnknownMethod).origin(),
        Origin::External
    );
    assert_eq!(
        app(ApplicationErrorKind::ProtocolError).origin(),
        Origin::Internal
    );
}
