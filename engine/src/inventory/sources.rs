//! Inventory sources on disk, handled as ansible-core's `InventoryManager`
//! and its default plugins do: a directory is read entry by entry in sorted
//! order (skipping hidden files, `group_vars`, `host_vars`, `*.retry`, `*~`,
//! `*.md` …, recursing into subdirectories); a file with no extension or a
//! YAML one is tried as a YAML inventory first and then as INI; other files
//! as INI; a missing path containing a comma is a host list (`a,b,`). Also
//! the `group_vars/` and `host_vars/` directories beside a source or a
//! playbook (files `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`, or a
//! directory `NAME/` of such files, read recursively in sorted order).

use super::data::{Data, UNGROUPED};
use super::hostrange::parse_address;
use super::yaml_inv::{self, YamlInvError};
use super::yaml_src::yaml_to_json;
use super::{ini, InventoryError, LOCALHOST};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Variables from one `group_vars/` + `host_vars/` pair, by entity name.
#[derive(Clone, Debug, Default)]
pub(super) struct VarsLayer {
    pub groups: HashMap<String, Map<String, Value>>,
    pub hosts: HashMap<String, Map<String, Value>>,
}

fn read(path: &Path) -> Result<String, InventoryError> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|source| InventoryError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Names ansible-core skips inside an inventory directory.
fn ignored(name: &str) -> bool {
    const EXTS: [&str; 12] = [
        ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg",
        ".retry",
    ];
    name.starts_with('.')
        || matches!(name, "host_vars" | "group_vars" | "vars_plugins")
        || EXTS.iter().any(|e| name.ends_with(e))
}

/// Read one source (file, directory or host list) into `data`.
pub(super) fn load_source(data: &mut Data, source: &Path) -> Result<(), InventoryError> {
    if source.is_dir() {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(source)
            .map_err(|e| InventoryError::Io {
                path: source.to_path_buf(),
                source: e,
            })?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| InventoryError::Io {
                path: source.to_path_buf(),
                source: e,
            })?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for name in names {
            if !ignored(&name.to_string_lossy()) {
                load_source(data, &source.join(name))?;
            }
        }
        return Ok(());
    }
    if source.exists() {
        return load_file(data, source);
    }
    let text = source.to_string_lossy();
    if text.contains(',') {
        for h in text.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let (host, port) = parse_address(h, false).unwrap_or_else(|| (h.to_string(), None));
            data.add_host(&host, Some(UNGROUPED), port, None);
        }
        return Ok(());
    }
    Err(InventoryError::NotFound {
        path: source.to_path_buf(),
    })
}

fn load_file(data: &mut Data, file: &Path) -> Result<(), InventoryError> {
    let ext = file.extension().map(|e| e.to_string_lossy().into_owned());
    if ext.as_deref() == Some("toml") {
        return Err(InventoryError::Unsupported {
            file: file.to_path_buf(),
            what: "TOML inventory".into(),
        });
    }
    let text = read(file)?;
    let yaml_ext = matches!(ext.as_deref(), Some("yml" | "yaml" | "json"));
    let mut yaml_err: Option<InventoryError> = None;
    if ext.is_none() || yaml_ext {
        let mut scratch = data.clone();
        let parsed = yaml_to_json(&text, file).map_err(YamlInvError::NotInventory);
        match parsed.and_then(|doc| yaml_inv::parse(&doc, file, &mut scratch)) {
            Ok(()) => {
                *data = scratch;
                return Ok(());
            }
            Err(YamlInvError::Invalid(e)) => return Err(e),
            Err(YamlInvError::NotInventory(e)) => yaml_err = Some(e),
        }
    }
    let mut scratch = data.clone();
    match ini::parse(&text, file, &mut scratch) {
        Ok(()) => {
            *data = scratch;
            Ok(())
        }
        Err(ini_err) => Err(match yaml_err {
            Some(e) if yaml_ext => e,
            _ => ini_err,
        }),
    }
}

/// The directory whose `group_vars/`/`host_vars/` go with a source: the
/// source itself when it is a directory, else the file's directory. None for
/// a host list.
pub(super) fn vars_base(source: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(source).ok()?;
    if abs.is_dir() {
        Some(abs)
    } else if abs.exists() {
        abs.parent().map(Path::to_path_buf)
    } else {
        None
    }
}

/// Read `base/group_vars` and `base/host_vars` for every group and host of
/// `data` (and the implicit localhost names).
pub(super) fn load_layer(base: &Path, data: &Data) -> Result<VarsLayer, InventoryError> {
    let mut layer = VarsLayer::default();
    let gdir = base.join("group_vars");
    if gdir.is_dir() {
        for g in &data.groups {
            if let Some(vars) = entity_vars(&gdir, &g.name)? {
                layer.groups.insert(g.name.clone(), vars);
            }
        }
    }
    let hdir = base.join("host_vars");
    if hdir.is_dir() {
        let names = data
            .hosts
            .iter()
            .map(|h| h.name.as_str())
            .chain(LOCALHOST.iter().copied());
        for name in names {
            if let Some(vars) = entity_vars(&hdir, name)? {
                layer.hosts.insert(name.to_string(), vars);
            }
        }
    }
    Ok(layer)
}

/// `find_vars_files(dir, name)`: the first of `name`, `name.yml`,
/// `name.yaml`, `name.json` that exists; a directory yields its files.
fn find_vars_files(dir: &Path, name: &str) -> Result<Vec<PathBuf>, InventoryError> {
    for ext in ["", ".yml", ".yaml", ".json"] {
        let path = dir.join(format!("{name}{ext}"));
        if path.is_dir() {
            return dir_vars_files(&path);
        }
        if path.exists() {
            return Ok(vec![path]);
        }
    }
    Ok(Vec::new())
}

fn dir_vars_files(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let io = |e| InventoryError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    let mut found = Vec::new();
    for name in names {
        let text = name.to_string_lossy();
        if text.starts_with('.') || text.ends_with('~') {
            continue;
        }
        let path = dir.join(&name);
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().into_owned());
        if path.is_dir() && ext.is_none() {
            found.extend(dir_vars_files(&path)?);
        } else if path.is_file() && matches!(ext.as_deref(), None | Some("yml" | "yaml" | "json")) {
            found.push(path);
        }
    }
    Ok(found)
}

/// The merged variables of one entity's files, or None when it has none.
fn entity_vars(dir: &Path, name: &str) -> Result<Option<Map<String, Value>>, InventoryError> {
    if name.starts_with('/') {
        return Ok(None);
    }
    let files = find_vars_files(dir, name)?;
    if files.is_empty() {
        return Ok(None);
    }
    let mut vars = Map::new();
    for file in files {
        match yaml_to_json(&read(&file)?, &file)? {
            Value::Object(m) => vars.extend(m),
            Value::Null => {}
            Value::Bool(false) => {}
            Value::String(s) if s.is_empty() => {}
            Value::Array(a) if a.is_empty() => {}
            other => {
                let found = match other {
                    Value::Array(_) => "a list",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                };
                return Err(InventoryError::VarsFile {
                    file,
                    found: format!("{found} ({other})"),
                });
            }
        }
    }
    Ok(Some(vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_like_ansible() {
        for n in [
            ".git",
            "group_vars",
            "host_vars",
            "x.retry",
            "x~",
            "README.md",
            "a.txt",
            "ansible.cfg",
            "b.bak",
        ] {
            assert!(ignored(n), "{n}");
        }
        for n in ["hosts", "prod.ini", "web.yml", "x.json", "retry"] {
            assert!(!ignored(n), "{n}");
        }
    }

    #[test]
    fn vars_files_and_dirs() {
        let t = tempfile::tempdir().unwrap();
        let g = t.path().join("group_vars");
        std::fs::create_dir_all(g.join("web/sub")).unwrap();
        std::fs::write(g.join("web/a.yml"), "x: 1\ny: 1\n").unwrap();
        std::fs::write(g.join("web/sub/b"), "y: 2\n").unwrap();
        std::fs::write(g.join("web/c.txt"), "z: 3\n").unwrap();
        std::fs::write(g.join("web/.hidden.yml"), "z: 3\n").unwrap();
        std::fs::write(g.join("db"), "d: 1\n").unwrap();
        std::fs::write(g.join("db.yml"), "d: 2\n").unwrap();
        std::fs::write(g.join("bad.yml"), "- 1\n").unwrap();
        assert_eq!(
            entity_vars(&g, "web").unwrap().unwrap(),
            serde_json::json!({"x": 1, "y": 2})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(entity_vars(&g, "db").unwrap().unwrap()["d"], 1);
        assert!(entity_vars(&g, "none").unwrap().is_none());
        let e = entity_vars(&g, "bad").unwrap_err().to_string();
        assert!(e.contains("bad.yml") && e.contains("list"), "{e}");
    }
}
