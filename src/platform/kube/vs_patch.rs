//! The JSON patch pieces both VirtualService editors (`vs_faults`, `vs_weights`) build
//! with: operations at escaped pointers, the resourceVersion guard, putting a recorded
//! value back, and the field manager's patch parameters.

use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation, TestOperation};
use kube::api::PatchParams;
use serde_json::Value;

use super::FIELD_MANAGER;

/// JSON pointer escaping (RFC 6901).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

pub fn pointer(text: &str) -> json_patch::jsonptr::PointerBuf {
    json_patch::jsonptr::PointerBuf::parse(text).expect("pointers built here are valid")
}

pub fn add(path: &str, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: pointer(path),
        value,
    })
}

pub fn remove(path: &str) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation {
        path: pointer(path),
    })
}

/// The guard every patch starts with: the object is still the one read, so a
/// concurrent change makes the patch fail rather than clobber.
pub fn test_version(object: &Value) -> PatchOperation {
    PatchOperation::Test(TestOperation {
        path: pointer("/metadata/resourceVersion"),
        value: object["metadata"]["resourceVersion"].clone(),
    })
}

/// The operation that puts `original` (null: absent) back at `path`, where a value is
/// `present` now; none when both are absent.
pub fn put_back(path: &str, original: &Value, present: bool) -> Option<PatchOperation> {
    match (original.is_null(), present) {
        (true, true) => Some(remove(path)),
        (true, false) => None,
        (false, true) => Some(PatchOperation::Replace(ReplaceOperation {
            path: pointer(path),
            value: original.clone(),
        })),
        (false, false) => Some(add(path, original.clone())),
    }
}

/// The annotation `name`'s path, and the operations that write `text` into it (making
/// the annotations map first when the object has none).
pub fn write_annotation(object: &Value, name: &str, text: String) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    if object["metadata"]["annotations"].is_null() {
        ops.push(add(
            "/metadata/annotations",
            Value::Object(Default::default()),
        ));
    }
    ops.push(add(
        &format!("/metadata/annotations/{}", escape(name)),
        Value::String(text),
    ));
    ops
}

/// The operation that drops the annotation `name`, if the object has it.
pub fn drop_annotation(object: &Value, name: &str) -> Option<PatchOperation> {
    (!object["metadata"]["annotations"][name].is_null())
        .then(|| remove(&format!("/metadata/annotations/{}", escape(name))))
}

/// Patch parameters under slo-check's field manager.
pub fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}
