//! A fault-injecting [`ObjectStore`] wrapper: a real store underneath, with programmable faults on
//! top, to prove the commit protocol under faults that real stores only produce now and then.
//!
//! ```text
//!  CommitLog ──► FaultyStore ──(rules: which call, which path, what goes wrong)──► real store
//! ```
//!
//! A [`FaultRule`] matches calls by [`Op`] and a path substring, fires on its n-th match (and the
//! `times - 1` matches after it), and then does one [`FaultAction`]:
//! - `Fail`: the call is not made; an error is returned (a request that never reached the store);
//! - `ApplyThenFail`: the call is made, then an error is returned (a lost response);
//! - `ApplyThenAlreadyExists`: the call is made, then `AlreadyExists` is returned (what a client's
//!   retry of a conditional create that in fact succeeded sees);
//! - `CreateAsOverwrite`: a `PutMode::Create` put is made as an overwrite (a store that ignores
//!   conditional writes);
//! - `Stall(d)`: the call waits `d`, then is made.
//!
//! In-process tests build one with [`FaultyStore::new`]; processes started by crash tests get one
//! from `STREAMX_STORE_FAULTS` (see [`FaultRule::parse_list`]), read by `Store::with_url`. Unset, no
//! wrapper exists and nothing costs anything.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// The environment variable read by `Store::with_url` (crash tests of the real binary).
pub const FAULTS_ENV: &str = "STREAMX_STORE_FAULTS";

/// The kind of store call a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Head,
    Delete,
    List,
    Copy,
    Rename,
    Any,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    Fail,
    ApplyThenFail,
    ApplyThenAlreadyExists,
    CreateAsOverwrite,
    Stall(Duration),
}

/// One programmed fault.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub op: Op,
    /// Matches calls whose path contains this (empty: every path).
    pub path_contains: String,
    /// Fires on the n-th matching call (1-based) ...
    pub nth: u64,
    /// ... and on the `times - 1` matching calls after it (`u64::MAX`: forever).
    pub times: u64,
    pub action: FaultAction,
}

impl FaultRule {
    pub fn new(op: Op, path_contains: &str, action: FaultAction) -> Self {
        FaultRule {
            op,
            path_contains: path_contains.to_string(),
            nth: 1,
            times: 1,
            action,
        }
    }

    /// Fires on the n-th matching call instead of the first.
    pub fn nth(mut self, n: u64) -> Self {
        self.nth = n.max(1);
        self
    }

    /// Fires on every matching call from the n-th on.
    pub fn always(mut self) -> Self {
        self.times = u64::MAX;
        self
    }

    /// Parses `op:path-substring:nth:action[;...]`, e.g.
    /// `put:/_streamx/commits/:2:apply-then-exists;put::1+:create-as-overwrite`.
    /// `op` is put|get|head|delete|list|copy|rename|any; `nth` is a number, `n+` for "from the
    /// n-th on"; `action` is fail|apply-then-fail|apply-then-exists|create-as-overwrite|stall-<ms>.
    pub fn parse_list(spec: &str) -> std::result::Result<Vec<FaultRule>, String> {
        spec.split(';')
            .filter(|s| !s.trim().is_empty())
            .map(|s| Self::parse(s.trim()))
            .collect()
    }

    fn parse(s: &str) -> std::result::Result<FaultRule, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [op, path, nth, action] = parts[..] else {
            return Err(format!("{FAULTS_ENV}: '{s}' is not op:path:nth:action"));
        };
        let op = match op {
            "put" => Op::Put,
            "get" => Op::Get,
            "head" => Op::Head,
            "delete" => Op::Delete,
            "list" => Op::List,
            "copy" => Op::Copy,
            "rename" => Op::Rename,
            "any" => Op::Any,
            other => return Err(format!("{FAULTS_ENV}: unknown op '{other}' in '{s}'")),
        };
        let (nth, forever) = match nth.strip_suffix('+') {
            Some(n) => (n, true),
            None => (nth, false),
        };
        let nth: u64 = nth
            .parse()
            .map_err(|_| format!("{FAULTS_ENV}: bad count '{nth}' in '{s}'"))?;
        let action = match action {
            "fail" => FaultAction::Fail,
            "apply-then-fail" => FaultAction::ApplyThenFail,
            "apply-then-exists" => FaultAction::ApplyThenAlreadyExists,
            "create-as-overwrite" => FaultAction::CreateAsOverwrite,
            other => match other.strip_prefix("stall-").and_then(|ms| ms.parse().ok()) {
                Some(ms) => FaultAction::Stall(Duration::from_millis(ms)),
                None => return Err(format!("{FAULTS_ENV}: unknown action '{other}' in '{s}'")),
            },
        };
        let rule = FaultRule::new(op, path, action).nth(nth);
        Ok(if forever { rule.always() } else { rule })
    }
}

struct RuleState {
    rule: FaultRule,
    matched: u64,
}

/// The wrapper. Cheap to clone through `Arc`; rules can be added while it is in use.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    rules: Arc<Mutex<Vec<RuleState>>>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        FaultyStore {
            inner,
            rules: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn with_rules(inner: Arc<dyn ObjectStore>, rules: Vec<FaultRule>) -> Self {
        let store = FaultyStore::new(inner);
        for r in rules {
            store.add(r);
        }
        store
    }

    pub fn add(&self, rule: FaultRule) {
        self.rules
            .lock()
            .unwrap()
            .push(RuleState { rule, matched: 0 });
    }

    /// How many rules have fired at least once and are used up.
    pub fn fired(&self) -> usize {
        let rules = self.rules.lock().unwrap();
        rules
            .iter()
            .filter(|r| r.matched >= r.rule.nth.saturating_add(r.rule.times).saturating_sub(1))
            .count()
    }

    /// The action for this call, if a rule fires.
    fn action(&self, op: Op, path: &Path) -> Option<FaultAction> {
        decide(&self.rules, op, path)
    }
}

fn decide(rules: &Mutex<Vec<RuleState>>, op: Op, path: &Path) -> Option<FaultAction> {
    let mut rules = rules.lock().unwrap();
    let path = path.as_ref();
    for r in rules.iter_mut() {
        if (r.rule.op == op || r.rule.op == Op::Any) && path.contains(&r.rule.path_contains) {
            r.matched += 1;
            let last = r.rule.nth.saturating_add(r.rule.times - 1);
            if r.matched >= r.rule.nth && r.matched <= last {
                return Some(r.rule.action);
            }
        }
    }
    None
}

fn injected(path: &Path, what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {what} on {path}").into(),
    }
}

fn already_exists(path: &Path) -> object_store::Error {
    object_store::Error::AlreadyExists {
        path: path.to_string(),
        source: "injected fault: applied, then answered AlreadyExists".into(),
    }
}

/// Runs `call` under `action`: before (fail, stall), around (apply then fail) or not at all.
async fn around<T, F>(action: Option<FaultAction>, path: &Path, call: F) -> Result<T>
where
    F: std::future::Future<Output = Result<T>>,
{
    match action {
        None | Some(FaultAction::CreateAsOverwrite) => call.await,
        Some(FaultAction::Fail) => Err(injected(path, "request failed")),
        Some(FaultAction::Stall(d)) => {
            tokio::time::sleep(d).await;
            call.await
        }
        Some(FaultAction::ApplyThenFail) => {
            call.await?;
            Err(injected(path, "response lost after the call was applied"))
        }
        Some(FaultAction::ApplyThenAlreadyExists) => {
            call.await?;
            Err(already_exists(path))
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> Result<PutResult> {
        let action = self.action(Op::Put, location);
        if action == Some(FaultAction::CreateAsOverwrite) && opts.mode == PutMode::Create {
            opts.mode = PutMode::Overwrite;
        }
        around(
            action,
            location,
            self.inner.put_opts(location, payload, opts),
        )
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let action = self.action(Op::Put, location);
        around(
            action,
            location,
            self.inner.put_multipart_opts(location, opts),
        )
        .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        let action = self.action(op, location);
        around(action, location, self.inner.get_opts(location, options)).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let action = self.action(Op::Get, location);
        around(action, location, self.inner.get_ranges(location, ranges)).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // Deletes are decided one path at a time, before the inner store sees them; a stalled
        // one holds up the paths behind it.
        let rules = self.rules.clone();
        let decided = locations.then(move |p| {
            let action = p.as_ref().ok().and_then(|p| decide(&rules, Op::Delete, p));
            async move {
                let path = p?;
                match action {
                    Some(FaultAction::Fail) => Err(injected(&path, "delete failed")),
                    Some(FaultAction::Stall(d)) => {
                        tokio::time::sleep(d).await;
                        Ok(path)
                    }
                    _ => Ok(path),
                }
            }
        });
        self.inner.delete_stream(decided.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let root = Path::default();
        match self.action(Op::List, prefix.unwrap_or(&root)) {
            Some(FaultAction::Fail) => {
                let err = injected(prefix.unwrap_or(&root), "list failed");
                futures::stream::once(async move { Err(err) }).boxed()
            }
            _ => self.inner.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let root = Path::default();
        let action = self.action(Op::List, prefix.unwrap_or(&root));
        around(
            action,
            prefix.unwrap_or(&root),
            self.inner.list_with_delimiter(prefix),
        )
        .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let action = self.action(Op::Copy, to);
        around(action, to, self.inner.copy_opts(from, to, options)).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let action = self.action(Op::Rename, to);
        around(action, to, self.inner.rename_opts(from, to, options)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_of_rules() {
        let rules =
            FaultRule::parse_list("put:/commits/:2:apply-then-exists;rename::1+:stall-50").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].op, Op::Put);
        assert_eq!(rules[0].nth, 2);
        assert_eq!(rules[0].times, 1);
        assert_eq!(rules[0].action, FaultAction::ApplyThenAlreadyExists);
        assert_eq!(rules[1].times, u64::MAX);
        assert_eq!(
            rules[1].action,
            FaultAction::Stall(Duration::from_millis(50))
        );
        assert!(FaultRule::parse_list("put:x:1").is_err());
        assert!(FaultRule::parse_list("poke:x:1:fail").is_err());
        assert!(FaultRule::parse_list("put:x:1:explode").is_err());
    }

    #[tokio::test]
    async fn deletes_fail_and_stall_as_ruled() {
        use object_store::ObjectStoreExt;
        let inner = Arc::new(object_store::memory::InMemory::new());
        let rules = FaultRule::parse_list("delete:a:1:fail;delete:b:1+:stall-200").unwrap();
        let store = FaultyStore::with_rules(inner.clone(), rules);
        for name in ["a", "b"] {
            inner
                .put(&Path::from(name), PutPayload::from("x"))
                .await
                .unwrap();
        }
        assert!(store.delete(&Path::from("a")).await.is_err());
        let started = std::time::Instant::now();
        store.delete(&Path::from("b")).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(
            inner.head(&Path::from("a")).await.is_ok(),
            "the failed delete left it"
        );
        assert!(inner.head(&Path::from("b")).await.is_err());
    }
}
