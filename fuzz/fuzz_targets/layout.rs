//! Object paths (format-spec §1.1): `layout::Object::parse` on any string must accept only the
//! canonical name of an object, which `Object::path` gives back, and agree with the type the
//! prefix names.
#![no_main]

use cairn::layout::{Object, ObjectType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some(o) = Object::parse(&s) {
        assert_eq!(o.path(), s, "parse accepted a name path() does not make");
        assert_eq!(ObjectType::of_path(&s), Some(o.object_type()));
        assert_eq!(o.object_type().parse(&s).as_ref(), Some(&o));
        assert!(cairn::layout::is_valid_path(&s));
    }
});
