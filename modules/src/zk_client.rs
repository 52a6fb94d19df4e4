//! ZooKeeper's wire protocol for `zk_node`, through the `zookeeper-client`
//! crate, on an address the engine forwards to the host's client port: a
//! session with a deadline on every phase, ACL words (`world:anyone:cdrwa`),
//! reading a znode (and, for a recursive delete, its subtree) as JSON for
//! the pure planner, and applying planned operations as one versioned
//! `multi` transaction (all or nothing; a version that moved since the
//! observation fails the whole transaction).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;
use zookeeper_client::{Acl, AuthId, Client, CreateMode, Error, Permission};

/// Deadline for connecting, and for the whole of an observation or apply.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Most znodes a recursive observation reads.
const MAX_SUBTREE: usize = 10_000;

const PERMS: [(char, Permission); 5] = [
    ('c', Permission::CREATE),
    ('d', Permission::DELETE),
    ('r', Permission::READ),
    ('w', Permission::WRITE),
    ('a', Permission::ADMIN),
];

/// Parse `scheme:id:perms` (the id may hold colons, as `digest:user:hash`)
/// into its canonical word (perms in `cdrwa` order).
pub fn canonical_acl(word: &str) -> Result<String, String> {
    let (scheme, rest) = word
        .split_once(':')
        .ok_or_else(|| format!("ACL `{word}` is not scheme:id:perms"))?;
    let (id, perms) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("ACL `{word}` is not scheme:id:perms"))?;
    if scheme.is_empty() || id.is_empty() {
        return Err(format!("ACL `{word}` is not scheme:id:perms"));
    }
    let mut out = String::new();
    for (c, _) in PERMS {
        if perms.contains(c) {
            out.push(c);
        }
    }
    if let Some(bad) = perms.chars().find(|c| !"cdrwa".contains(*c)) {
        return Err(format!(
            "ACL `{word}`: unknown permission `{bad}` (use c, d, r, w, a)"
        ));
    }
    Ok(format!("{scheme}:{id}:{out}"))
}

fn to_acl(word: &str) -> Result<Acl, String> {
    let w = canonical_acl(word)?;
    let (scheme, rest) = w.split_once(':').unwrap_or_default();
    let (id, perms) = rest.rsplit_once(':').unwrap_or_default();
    let p = PERMS
        .iter()
        .filter(|(c, _)| perms.contains(*c))
        .fold(Permission::NONE, |a, (_, p)| a | *p);
    Ok(Acl::new(p, AuthId::new(scheme, id)))
}

fn acl_word(a: &Acl) -> String {
    let perms: String = PERMS
        .iter()
        .filter(|(_, p)| a.permission().has(*p))
        .map(|(c, _)| *c)
        .collect();
    format!("{}:{}:{perms}", a.scheme(), a.id())
}

/// One znode below the observed one (recursive observations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubNode {
    pub path: String,
    pub version: i32,
    pub value: String,
}

/// What a znode looks like now; the JSON form is the probe's observation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeState {
    pub exists: bool,
    /// Data as text (lossy when `binary`).
    pub value: String,
    pub binary: bool,
    pub version: i32,
    pub aversion: i32,
    pub acl: Vec<String>,
    pub children: Vec<String>,
    /// Ancestors that do not exist, top first.
    pub missing_parents: Vec<String>,
    /// Descendants, parents before children (only when asked for).
    pub subtree: Vec<SubNode>,
}

/// The client's connect string for forwarded addresses (`a:p,b:p`).
pub fn connect_string(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Open a session on one of the forwarded addresses (the client tries each
/// until one serves); every phase is bounded.
pub async fn connect(addrs: &[SocketAddr]) -> Result<Client, String> {
    let c = Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .with_connection_timeout(Duration::from_secs(5))
        .with_fail_eagerly();
    match timeout(DEADLINE, c.connect(&connect_string(addrs))).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot open a ZooKeeper session: {e}")),
        Err(_) => Err(format!(
            "no ZooKeeper session within {}s",
            DEADLINE.as_secs()
        )),
    }
}

/// Parent paths of `path`, top first (`/a/b/c` → `/a`, `/a/b`).
pub fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = path[at + 1..].find('/') {
        at += i + 1;
        out.push(path[..at].to_string());
    }
    out
}

fn child(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

async fn read(c: &Client, path: &str, subtree: bool) -> Result<NodeState, Error> {
    let mut st = NodeState::default();
    match c.get_data(path).await {
        Ok((data, stat)) => {
            st.exists = true;
            st.binary = std::str::from_utf8(&data).is_err();
            st.value = String::from_utf8_lossy(&data).into_owned();
            st.version = stat.version;
            st.aversion = stat.aversion;
        }
        Err(Error::NoNode) => {
            for a in ancestors(path) {
                if c.check_stat(&a).await?.is_none() {
                    st.missing_parents.push(a);
                }
            }
            return Ok(st);
        }
        Err(e) => return Err(e),
    }
    st.acl = c.get_acl(path).await?.0.iter().map(acl_word).collect();
    st.children = c.list_children(path).await?;
    st.children.sort();
    if subtree {
        let mut queue: Vec<String> = st.children.iter().map(|n| child(path, n)).collect();
        let mut i = 0;
        while i < queue.len() && i < MAX_SUBTREE {
            let p = queue[i].clone();
            i += 1;
            match c.get_data(&p).await {
                Ok((data, stat)) => st.subtree.push(SubNode {
                    path: p.clone(),
                    version: stat.version,
                    value: String::from_utf8_lossy(&data).into_owned(),
                }),
                Err(Error::NoNode) => continue,
                Err(e) => return Err(e),
            }
            let mut kids = match c.list_children(&p).await {
                Ok(k) => k,
                Err(Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            kids.sort();
            queue.extend(kids.iter().map(|n| child(&p, n)));
        }
    }
    Ok(st)
}

/// Observe one znode (and its subtree when `subtree`).
pub async fn observe(addrs: &[SocketAddr], path: &str, subtree: bool) -> Result<NodeState, String> {
    let c = connect(addrs).await?;
    match timeout(DEADLINE, read(&c, path, subtree)).await {
        Ok(Ok(st)) => Ok(st),
        Ok(Err(e)) => Err(format!("reading znode {path}: {e}")),
        Err(_) => Err(format!(
            "reading znode {path}: no answer within {}s",
            DEADLINE.as_secs()
        )),
    }
}

/// One planned write. Versions are those observed (compare-and-set).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        acl: Vec<String>,
    },
    Set {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<String>,
        aversion: i32,
    },
}

impl Op {
    /// Short form for fixtures and logs; data is never shown.
    pub fn describe(&self) -> String {
        match self {
            Op::Create { path, acl, .. } => format!("create {path} acl={}", acl.join(",")),
            Op::Set { path, version, .. } => format!("set {path} if version={version}"),
            Op::Delete { path, version } => format!("delete {path} if version={version}"),
            Op::SetAcl {
                path,
                acl,
                aversion,
            } => format!("setacl {path} {} if aversion={aversion}", acl.join(",")),
        }
    }
}

fn explain(e: &Error, ops: &[Op], index: Option<usize>) -> String {
    let at = index
        .and_then(|i| ops.get(i))
        .map(|o| format!(" at `{}`", o.describe()))
        .unwrap_or_default();
    match e {
        Error::BadVersion => format!(
            "the znode changed since it was observed (version mismatch{at}); nothing was written"
        ),
        Error::NodeExists => {
            format!("the znode was created since it was observed{at}; nothing was written")
        }
        Error::NoNode => {
            format!("the znode was deleted since it was observed{at}; nothing was written")
        }
        Error::NotEmpty => {
            format!("children were added since it was observed{at}; nothing was written")
        }
        other => format!("{other}{at}; nothing was written"),
    }
}

async fn write(c: &Client, ops: &[Op]) -> Result<(), String> {
    let acls: Vec<Vec<Acl>> = ops
        .iter()
        .map(|o| match o {
            Op::Create { acl, .. } | Op::SetAcl { acl, .. } => {
                acl.iter().map(|a| to_acl(a)).collect()
            }
            _ => Ok(vec![]),
        })
        .collect::<Result<_, String>>()?;
    let mut multi = c.new_multi_writer();
    let mut any = false;
    for (op, acl) in ops.iter().zip(&acls) {
        let r = match op {
            Op::Create { path, data, .. } => {
                let opts = CreateMode::Persistent.with_acls(acl.as_slice().into());
                multi.add_create(path, data, &opts)
            }
            Op::Set {
                path,
                data,
                version,
            } => multi.add_set_data(path, data, Some(*version)),
            Op::Delete { path, version } => multi.add_delete(path, Some(*version)),
            Op::SetAcl { .. } => continue,
        };
        r.map_err(|e| format!("{e} (`{}`)", op.describe()))?;
        any = true;
    }
    if any {
        multi.commit().await.map_err(|e| match e {
            zookeeper_client::MultiWriteError::OperationFailed { index, source } => {
                explain(&source, ops, Some(index))
            }
            zookeeper_client::MultiWriteError::RequestFailed { source } => {
                explain(&source, ops, None)
            }
        })?;
    }
    for (op, acl) in ops.iter().zip(&acls) {
        if let Op::SetAcl { path, aversion, .. } = op {
            c.set_acl(path, acl.as_slice(), Some(*aversion))
                .await
                .map_err(|e| explain(&e, std::slice::from_ref(op), Some(0)))?;
        }
    }
    Ok(())
}

/// Apply operations: data changes in one transaction, then ACL changes.
pub async fn apply(addrs: &[SocketAddr], ops: &[Op]) -> Result<(), String> {
    let c = connect(addrs).await?;
    match timeout(DEADLINE, write(&c, ops)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer from ZooKeeper within {}s; the outcome is unknown",
            DEADLINE.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_words_and_ancestors() {
        assert_eq!(
            canonical_acl("world:anyone:adrwc").unwrap(),
            "world:anyone:cdrwa"
        );
        assert_eq!(
            canonical_acl("digest:bob:x/Y=:r").unwrap(),
            "digest:bob:x/Y=:r"
        );
        assert!(canonical_acl("world:anyone:rx")
            .unwrap_err()
            .contains("`x`"));
        assert!(canonical_acl("anyone").is_err());
        let a = to_acl("ip:10.0.0.1:rw").unwrap();
        assert_eq!(acl_word(&a), "ip:10.0.0.1:rw");
        assert_eq!(ancestors("/a/b/c"), ["/a", "/a/b"]);
        assert!(ancestors("/a").is_empty());
        assert_eq!(child("/", "a"), "/a");
        let a: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.1:4002".parse().unwrap(),
        ];
        assert_eq!(connect_string(&a), "127.0.0.1:4001,127.0.0.1:4002");
    }
}
