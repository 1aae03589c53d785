//! Renders the stack with `kubectl kustomize` into plain objects: the tree is copied to
//! a private temporary directory, where the Secret's env file is written from the
//! environment (never into the user's tree, never logged).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::settings::KubeSettings;
use crate::platform::PlatformError;

/// The Secret's values, read from these environment variables at deploy time.
pub const SECRET_VARIABLES: &[&str] = &["REDIS_PASSWORD"];

/// Why the stack is rendered: to deploy it (secrets required) or only to learn its
/// object names (`stack down|status`: a placeholder stands in for a missing secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Deploy,
    Inspect,
}

/// The kubectl to render with: `$SLO_CHECK_KUBECTL`, else `kubectl` on PATH.
pub fn kubectl() -> Result<PathBuf, PlatformError> {
    if let Some(path) = std::env::var_os("SLO_CHECK_KUBECTL") {
        return Ok(PathBuf::from(path));
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("kubectl"))
                .find(|candidate| candidate.is_file())
        })
        .ok_or_else(|| {
            PlatformError::Usage(
                "--platform kube renders stack/ with `kubectl kustomize`, and no kubectl is on PATH: install kubectl (https://kubernetes.io/docs/tasks/tools/) or set SLO_CHECK_KUBECTL to its path"
                    .into(),
            )
        })
}

/// Render `<stack>/overlays/<overlay>` for deploying.
pub fn render(settings: &KubeSettings) -> Result<Vec<Value>, PlatformError> {
    render_for(settings, Purpose::Deploy)
}

/// Render `<stack>/overlays/<overlay>`: every object, in file order, checked to land in
/// the settings' namespace.
pub fn render_for(settings: &KubeSettings, purpose: Purpose) -> Result<Vec<Value>, PlatformError> {
    let usage = PlatformError::Usage;
    let stack = &settings.stack;
    let overlay = stack.join("overlays").join(&settings.overlay);
    if !stack.join("base").is_dir() {
        return Err(usage(format!(
            "--stack {}: no base/ directory there; give the directory that holds base/ and overlays/ (the repository's stack/)",
            stack.display()
        )));
    }
    if !overlay.join("kustomization.yaml").is_file() {
        return Err(usage(format!(
            "--overlay {}: no {} (overlays there: {})",
            settings.overlay,
            overlay.join("kustomization.yaml").display(),
            overlays_in(stack).join(", ")
        )));
    }
    let kubectl = kubectl()?;
    let copy = tempfile::tempdir()
        .map_err(|e| PlatformError::Infra(format!("cannot make a temporary directory: {e}")))?;
    copy_tree(stack, copy.path()).map_err(|e| {
        PlatformError::Infra(format!("cannot copy {} to render it: {e}", stack.display()))
    })?;
    let secrets = copy.path().join("base").join("secrets.env");
    if !secrets.exists() {
        write_secrets(&secrets, purpose)?;
    }
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(copy.path().join("overlays").join(&settings.overlay))
        .output()
        .map_err(|e| usage(format!("cannot run {} kustomize: {e}", kubectl.display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(usage(format!(
            "`kubectl kustomize {}` failed: {}",
            overlay.display(),
            stderr.trim().replace(
                &copy.path().display().to_string(),
                &stack.display().to_string()
            )
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let objects = parse(&text).map_err(|e| usage(format!("{}: {e}", overlay.display())))?;
    check_namespace(&objects, &settings.namespace, &overlay)?;
    Ok(objects)
}

/// Multi-document YAML into objects; every one must have apiVersion, kind and a name.
pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| format!("the rendered YAML does not parse: {e}"))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    for d in &docs {
        if d["apiVersion"].as_str().is_none()
            || d["kind"].as_str().is_none()
            || d["metadata"]["name"].as_str().is_none()
        {
            return Err(format!(
                "a rendered object lacks apiVersion, kind or metadata.name: {}",
                serde_json::to_string(d).unwrap_or_default()
            ));
        }
    }
    Ok(docs)
}

/// The stack must deploy into the namespace slo-check watches.
fn check_namespace(
    objects: &[Value],
    namespace: &str,
    overlay: &Path,
) -> Result<(), PlatformError> {
    for o in objects {
        let actual = if o["kind"] == "Namespace" {
            o["metadata"]["name"].as_str()
        } else {
            o["metadata"]["namespace"].as_str()
        };
        if let Some(actual) = actual
            && actual != namespace
        {
            return Err(PlatformError::Usage(format!(
                "{} deploys {} `{}` into namespace {actual}, but the run watches namespace {namespace} (from --namespace or the scenario's platform.namespace); make them agree (set `namespace:` in your overlay's kustomization.yaml)",
                overlay.display(),
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?"),
            )));
        }
    }
    Ok(())
}

fn write_secrets(path: &Path, purpose: Purpose) -> Result<(), PlatformError> {
    let mut text = String::new();
    for name in SECRET_VARIABLES {
        let value = match (std::env::var(name), purpose) {
            (Ok(v), _) if !v.is_empty() => v,
            (_, Purpose::Inspect) => "placeholder-for-rendering-names".into(),
            _ => {
                return Err(PlatformError::Usage(format!(
                    "${name} is not set: the stack's Secret takes its value from the environment at deploy time; export {name}=... (e.g. `export {name}=\"$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')\"`), or write stack/base/secrets.env with scripts/stack-secrets.sh"
                )));
            }
        };
        if value.contains('\n') {
            return Err(PlatformError::Usage(format!(
                "${name} contains a newline, which an env file cannot hold"
            )));
        }
        if name == &"REDIS_PASSWORD" && !url_safe(&value) {
            return Err(PlatformError::Usage(
                "$REDIS_PASSWORD may hold only letters, digits and - . _ ~ (it goes into REDIS_URL unescaped); e.g. `export REDIS_PASSWORD=\"$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')\"`".into(),
            ));
        }
        text.push_str(&format!("{name}={value}\n"));
    }
    std::fs::write(path, text)
        .map_err(|e| PlatformError::Infra(format!("cannot write {}: {e}", path.display())))
}

/// RFC 3986 unreserved characters only, as scripts/stack-secrets.sh requires.
fn url_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn overlays_in(stack: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(stack.join("overlays"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        names.push("none".into());
    }
    names
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_objects_and_rejects_nameless_ones() {
        let objects = parse("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n").unwrap();
        assert_eq!(objects.len(), 2);
        let err = parse("apiVersion: v1\nkind: Service\nmetadata: {}\n").unwrap_err();
        assert!(err.contains("metadata.name"), "{err}");
    }

    #[test]
    fn objects_outside_the_watched_namespace_are_refused() {
        let objects =
            parse("apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: other}\n")
                .unwrap();
        let err = check_namespace(&objects, "mcp-agents", Path::new("stack/overlays/kind"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("namespace other") && err.contains("mcp-agents"),
            "{err}"
        );
    }
}
