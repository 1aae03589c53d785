//! Rendering `stack/` with `kubectl kustomize` and validating what it produces against
//! the real APIs: custom resources (Istio, prometheus-operator) against their upstream
//! CRD schemas in `tests/schemas/`, Kubernetes' own kinds by a round trip through their
//! k8s-openapi type that must lose no field.
//!
//! Kept apart from `tests/stack.rs` so that other tests (e.g. of the VirtualService
//! patches the fault injector produces) can validate objects the same way.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use k8s_openapi::Resource;
use serde_json::Value;

/// The password the tests put in the deploy-time environment; never a real secret.
pub const TEST_REDIS_PASSWORD: &str = "test-only-not-a-secret";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Parses one YAML file into JSON.
pub fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The kubectl to render with: `$SLO_CHECK_KUBECTL`, else `kubectl` on PATH. `None` (and a
/// printed reason) only when there is none and `SLO_CHECK_REQUIRE_KUBECTL` is unset;
/// scripts/test.sh sets it, so CI never skips.
pub fn kubectl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SLO_CHECK_KUBECTL") {
        return Some(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("SLO_CHECK_REQUIRE_KUBECTL").is_none(),
            "SLO_CHECK_REQUIRE_KUBECTL is set but no kubectl is on PATH (or in \
             $SLO_CHECK_KUBECTL); scripts/test.sh installs one"
        );
        // Written to the stderr handle, not with eprintln!, which the test harness
        // captures and shows only on failure; once per test binary.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (tests/stack.rs): no kubectl on PATH, so stack/ cannot be rendered \
                 with kustomize; install kubectl (scripts/test.sh does) or set SLO_CHECK_KUBECTL"
            );
        });
    }
    found
}

/// A copy of `stack/` in a temporary directory, with `base/secrets.env` written by
/// scripts/stack-secrets.sh from a test environment: the deploy-time path, without
/// touching the work tree (where a real secrets.env may exist and is never read here).
pub struct StackCopy {
    _dir: tempfile::TempDir,
    pub stack: PathBuf,
}

impl StackCopy {
    /// The copy without secrets.env.
    pub fn bare() -> StackCopy {
        let dir = tempfile::tempdir().expect("temp dir");
        let stack = dir.path().join("stack");
        copy_tree(&root().join("stack"), &stack);
        StackCopy { _dir: dir, stack }
    }

    /// The copy with secrets.env written from `REDIS_PASSWORD=TEST_REDIS_PASSWORD`.
    pub fn with_secrets() -> StackCopy {
        let copy = StackCopy::bare();
        let out = copy.stack_secrets(Some(TEST_REDIS_PASSWORD));
        assert!(
            out.status.success(),
            "scripts/stack-secrets.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        copy
    }

    /// Runs scripts/stack-secrets.sh on this copy with the given REDIS_PASSWORD (or none).
    pub fn stack_secrets(&self, password: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("scripts/stack-secrets.sh"))
            .arg(&self.stack)
            .env_remove("REDIS_PASSWORD");
        if let Some(password) = password {
            cmd.env("REDIS_PASSWORD", password);
        }
        cmd.output().expect("run scripts/stack-secrets.sh")
    }

    /// `kubectl kustomize stack/overlays/<overlay>` on this copy.
    pub fn kustomize(&self, kubectl: &Path, overlay: &str) -> std::process::Output {
        Command::new(kubectl)
            .arg("kustomize")
            .arg(self.stack.join("overlays").join(overlay))
            .output()
            .expect("run kubectl kustomize")
    }

    /// Renders an overlay and parses every document.
    pub fn render(&self, kubectl: &Path, overlay: &str) -> Vec<Value> {
        let out = self.kustomize(kubectl, overlay);
        assert!(
            out.status.success(),
            "kubectl kustomize stack/overlays/{overlay} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // kustomize reports deprecated kustomization syntax on stderr; keep it current.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.to_lowercase().contains("deprecated"),
            "kubectl kustomize stack/overlays/{overlay} warns:\n{stderr}"
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8 output");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("rendered stack/overlays/{overlay} is not YAML: {e}"));
        docs.into_iter().filter(|d| !d.is_null()).collect()
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "secrets.env" {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `apiVersion/kind/name`, for messages.
pub fn describe(obj: &Value) -> String {
    format!(
        "{}/{}/{}",
        obj["apiVersion"].as_str().unwrap_or("?"),
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The one object of this kind and name; panics naming what is there instead.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let matches: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    match matches.as_slice() {
        [one] => one,
        _ => panic!(
            "expected one {kind} {name}, found {}; objects: {:?}",
            matches.len(),
            objects.iter().map(describe).collect::<Vec<_>>()
        ),
    }
}

/// The one object of this kind whose name starts with `prefix` (generated, hashed names).
pub fn find_generated<'a>(objects: &'a [Value], kind: &str, prefix: &str) -> &'a Value {
    let matches: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            o["kind"] == kind
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    assert_eq!(matches.len(), 1, "expected one generated {kind} {prefix}*");
    matches[0]
}

/// How an object was checked against the real API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Against an upstream CustomResourceDefinition's schema.
    CrdSchema,
    /// By a lossless round trip through its k8s-openapi type.
    RoundTrip,
}

/// Validates one object against the real API; `Err` lists every problem with its path.
/// An object of a kind neither table knows is an error, so nothing goes unchecked.
pub fn validate(obj: &Value) -> Result<Checked, Vec<String>> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    if let Some(validator) = crd_validators().get(&(api_version.to_owned(), kind.to_owned())) {
        let errors: Vec<String> = validator
            .iter_errors(obj)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        return if errors.is_empty() {
            Ok(Checked::CrdSchema)
        } else {
            Err(errors)
        };
    }
    round_trip(obj).map(|()| Checked::RoundTrip)
}

/// The CRD files in tests/schemas/, copied unchanged from upstream.
const CRD_FILES: &[&str] = &[
    "tests/schemas/istio-networking-crds.yaml",
    "tests/schemas/monitoring.coreos.com_prometheusrules.yaml",
    "tests/schemas/monitoring.coreos.com_servicemonitors.yaml",
];

type Validators = BTreeMap<(String, String), jsonschema::Validator>;

/// One validator per (apiVersion, kind) served by the CRDs, compiled once.
fn crd_validators() -> &'static Validators {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let mut validators = BTreeMap::new();
        for file in CRD_FILES {
            let text = std::fs::read_to_string(root().join(file)).unwrap();
            let crds: Vec<Value> =
                serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            for crd in crds.iter().filter(|c| !c.is_null()) {
                let group = crd["spec"]["group"].as_str().unwrap();
                let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
                for version in crd["spec"]["versions"].as_array().unwrap() {
                    let mut schema = version["schema"]["openAPIV3Schema"].clone();
                    structural(&mut schema);
                    implicit_root_fields(&mut schema);
                    let validator = jsonschema::validator_for(&schema)
                        .unwrap_or_else(|e| panic!("{file} {kind}: schema does not compile: {e}"));
                    let api_version = format!("{group}/{}", version["name"].as_str().unwrap());
                    validators.insert((api_version, kind.to_owned()), validator);
                }
            }
        }
        validators
    })
}

/// Turns a CRD's structural schema into a JSON Schema with the API server's semantics:
/// drops the `x-kubernetes-*` extensions (a JSON Schema validator does not know them; the
/// CEL rules of `x-kubernetes-validations` are therefore not checked), and closes every
/// object that lists its `properties`, unless it keeps unknown fields
/// (`x-kubernetes-preserve-unknown-fields`). The API server prunes or, with strict field
/// validation (kubectl's default), rejects an unknown field; plain JSON Schema would
/// accept it, and a misspelt or invented field (`circuitBreaker`) would pass unseen.
pub fn structural(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let preserve = map
                .get("x-kubernetes-preserve-unknown-fields")
                .is_some_and(|v| v == true);
            map.retain(|k, _| !k.starts_with("x-kubernetes-"));
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserve
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            map.values_mut().for_each(structural);
        }
        Value::Array(items) => items.iter_mut().for_each(structural),
        _ => {}
    }
}

/// The API server accepts `apiVersion`, `kind` and `metadata` on every custom resource
/// (and validates metadata itself), whether or not the CRD's schema lists them; Istio's
/// schemas list only `spec` and `status`.
fn implicit_root_fields(schema: &mut Value) {
    let properties = schema["properties"]
        .as_object_mut()
        .expect("a CRD schema lists its properties");
    for (field, kind) in [
        ("apiVersion", "string"),
        ("kind", "string"),
        ("metadata", "object"),
    ] {
        properties
            .entry(field)
            .or_insert_with(|| serde_json::json!({ "type": kind }));
    }
}

/// Deserializes `obj` into `T` and back; every field the type dropped or changed is an
/// error with its JSON pointer. (k8s-openapi ignores unknown fields when reading, so a
/// misspelt field comes back missing.)
fn round_trip_as<T>(obj: &Value) -> Result<(), Vec<String>>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| vec![format!("{e}")])?;
    let back = serde_json::to_value(&typed).expect("k8s-openapi types serialize");
    let mut errors = Vec::new();
    diff("", obj, &back, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every difference between what was written and what came back, by JSON pointer.
fn diff(path: &str, original: &Value, back: &Value, errors: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}/{key}");
                match b.get(key) {
                    Some(other) => diff(&here, value, other, errors),
                    None => errors.push(format!("{here}: dropped (not a field of the API type)")),
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                // k8s-openapi writes apiVersion/kind into every embedded resource (e.g. a
                // StatefulSet's volumeClaimTemplates); anything else would be invented.
                if !(key == "apiVersion" || key == "kind") || path.is_empty() {
                    errors.push(format!("{path}/{key}: added by the round trip"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}/{i}"), x, y, errors);
            }
        }
        (a, b) if a == b => {}
        (a, b) => errors.push(format!("{path}: {a} came back as {b}")),
    }
}

/// The Kubernetes kinds stack/ uses, by (apiVersion, kind), each with its k8s-openapi type.
fn round_trip(obj: &Value) -> Result<(), Vec<String>> {
    use k8s_openapi::api::{apps, autoscaling, core, networking, policy, rbac};
    type Check = fn(&Value) -> Result<(), Vec<String>>;
    fn entry<T>() -> (&'static str, &'static str, Check)
    where
        T: Resource + serde::de::DeserializeOwned + serde::Serialize,
    {
        (T::API_VERSION, T::KIND, round_trip_as::<T>)
    }
    let table = [
        entry::<core::v1::Namespace>(),
        entry::<core::v1::ResourceQuota>(),
        entry::<core::v1::ConfigMap>(),
        entry::<core::v1::Secret>(),
        entry::<core::v1::ServiceAccount>(),
        entry::<core::v1::Service>(),
        entry::<core::v1::PersistentVolumeClaim>(),
        entry::<rbac::v1::Role>(),
        entry::<rbac::v1::RoleBinding>(),
        entry::<apps::v1::Deployment>(),
        entry::<apps::v1::StatefulSet>(),
        entry::<autoscaling::v2::HorizontalPodAutoscaler>(),
        entry::<policy::v1::PodDisruptionBudget>(),
        entry::<networking::v1::NetworkPolicy>(),
    ];
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    match table
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
    {
        Some((_, _, check)) => check(obj),
        None => Err(vec![format!(
            "{api_version} {kind}: neither a CRD in tests/schemas/ nor a Kubernetes kind \
             known to tests/support/stack.rs; add its schema or k8s-openapi type"
        )]),
    }
}
