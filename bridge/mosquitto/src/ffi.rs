//! The only `unsafe` code of hookd: the Mosquitto 2.0 plugin interface
//! (version 5), checked against Debian 12's `mosquitto_broker.h`,
//! `mosquitto_plugin.h` and `mosquitto.h` (Mosquitto 2.0.11): the unit test
//! `layouts_and_constants_match_the_installed_headers` compiles a C program
//! against the installed headers and compares every struct size, alignment,
//! field offset and field size, and every constant, with this module's.
//!
//! Invariants this module relies on, from Mosquitto's plugin contract:
//! - Every callback runs on Mosquitto's main thread, with `event_data`
//!   pointing at a live event struct of the layout declared below for that
//!   event, valid for the duration of the callback.
//! - `char *` fields are NUL-terminated or NULL; `payload` points at
//!   `payloadlen` bytes or is NULL.
//! - `userdata` is the pointer `mosquitto_plugin_init` stored: a leaked
//!   `Box<Instance>`, freed exactly once in `mosquitto_plugin_cleanup`.
//! - To rewrite a message, a callback points `topic`/`payload` at new buffers
//!   from `mosquitto_strdup` / `mosquitto_malloc` and must not free the old
//!   ones: the broker compares pointers and frees the originals itself.
//! - No panic unwinds into C: the body of every `extern "C"` function runs
//!   in [`guarded`], which turns a panic into a logged error code (a panic
//!   escaping an `extern "C"` function aborts the process, i.e. the broker).
//!
//! Everything else (what to ask hookd, what to answer) is safe Rust in
//! [`crate::plugin`]; this module only converts.

#![allow(unsafe_code)]

use std::{
    borrow::Cow,
    ffi::{CStr, CString, c_char, c_int, c_void},
    panic::{self, AssertUnwindSafe},
    ptr, slice,
};

#[cfg(test)]
use self::fake_broker::*;
use crate::plugin::{Access, ClientInfo, Decision, Message, Plugin, Settings};

// `guarded` relies on unwinding: with panic = "abort", `catch_unwind` catches
// nothing and any panic (a bug, a poisoned lock in a dependency...) takes the
// whole broker down with it.
#[cfg(panic = "abort")]
compile_error!("hookd-mosquitto must be built with panic = \"unwind\": its FFI guards catch panics");

/// Declares the constants this module shares with Mosquitto's headers, and
/// (for the header test) the list of all of them, so a constant added here
/// is checked against the headers without anyone remembering to.
macro_rules! header_constants {
    ($($(#[$attr:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$attr])* const $name: c_int = $value;)*

        /// Every constant above, by its name in the headers.
        #[cfg(test)]
        const HEADER_CONSTANTS: &[(&str, c_int)] = &[$((stringify!($name), $name)),*];
    };
}

header_constants! {
    // `enum mosq_err_t` (mosquitto.h): what callbacks and init return.
    MOSQ_ERR_SUCCESS = 0;
    MOSQ_ERR_NOMEM = 1;
    /// Bad input: invalid `plugin_opt_*` options, or arguments Mosquitto
    /// should never pass.
    MOSQ_ERR_INVAL = 3;
    /// Basic auth refused: the client gets CONNACK "not authorized".
    MOSQ_ERR_AUTH = 11;
    /// ACL check refused.
    MOSQ_ERR_ACL_DENIED = 12;
    /// A failure inside the plugin (a caught panic, a runtime that would
    /// not start): nothing the broker's configuration could fix.
    MOSQ_ERR_UNKNOWN = 13;
    MOSQ_ERR_PLUGIN_DEFER = 17;

    // `enum mosquitto_plugin_event` (mosquitto_broker.h).
    MOSQ_EVT_ACL_CHECK = 2;
    MOSQ_EVT_BASIC_AUTH = 3;
    MOSQ_EVT_MESSAGE = 7;
    MOSQ_EVT_DISCONNECT = 10;

    // `access` of an ACL check (mosquitto_plugin.h).
    MOSQ_ACL_READ = 0x01;
    MOSQ_ACL_WRITE = 0x02;
    MOSQ_ACL_SUBSCRIBE = 0x04;
    MOSQ_ACL_UNSUBSCRIBE = 0x08;

    // Log levels (mosquitto.h).
    MOSQ_LOG_ERR = 1 << 3;
}

/// The plugin interface version this plugin speaks (Mosquitto 2.0's newest;
/// the headers name no constant for it).
const PLUGIN_INTERFACE_VERSION: c_int = 5;

/// `mosquitto_plugin_version`'s answer when it speaks none of the versions
/// offered: Mosquitto then refuses to load the plugin and does not start.
const NO_SUPPORTED_VERSION: c_int = -1;

/// `struct mosquitto` and `mosquitto_plugin_id_t`: opaque to plugins.
#[repr(C)]
pub struct Opaque {
    _private: [u8; 0],
}

/// Declares `#[repr(C)]` mirrors of Mosquitto's structs, each with the name
/// of the C struct it mirrors, and (for the header test) the list of their
/// layouts, so every field declared here is checked against the headers.
macro_rules! c_structs {
    ($(
        $(#[$attr:meta])*
        $vis:vis struct $name:ident = $c_name:ident {
            $($field:ident: $ty:ty,)*
        }
    )*) => {
        $(
            $(#[$attr])*
            #[repr(C)]
            $vis struct $name {
                $($field: $ty,)*
            }
        )*

        /// The Rust layout of every struct above, named as in C.
        #[cfg(test)]
        const C_STRUCTS: &[tests::CStruct] = &[$(
            tests::CStruct {
                c_name: stringify!($c_name),
                size: size_of::<$name>(),
                align: align_of::<$name>(),
                fields: &[$((stringify!($field), std::mem::offset_of!($name, $field), size_of::<$ty>())),*],
            }
        ),*];
    };
}

c_structs! {
    /// `struct mosquitto_opt` (mosquitto_plugin.h): one `plugin_opt_*` line.
    pub struct MosquittoOpt = mosquitto_opt {
        key: *mut c_char,
        value: *mut c_char,
    }

    /// `struct mosquitto_evt_acl_check` (mosquitto_broker.h).
    struct EvtAclCheck = mosquitto_evt_acl_check {
        future: *mut c_void,
        client: *mut Opaque,
        topic: *const c_char,
        payload: *const c_void,
        properties: *mut c_void,
        access: c_int,
        payloadlen: u32,
        qos: u8,
        retain: bool,
        future2: [*mut c_void; 4],
    }

    /// `struct mosquitto_evt_basic_auth` (mosquitto_broker.h).
    struct EvtBasicAuth = mosquitto_evt_basic_auth {
        future: *mut c_void,
        client: *mut Opaque,
        username: *mut c_char,
        password: *mut c_char,
        future2: [*mut c_void; 4],
    }

    /// `struct mosquitto_evt_message` (mosquitto_broker.h).
    struct EvtMessage = mosquitto_evt_message {
        future: *mut c_void,
        client: *mut Opaque,
        topic: *mut c_char,
        payload: *mut c_void,
        properties: *mut c_void,
        reason_string: *mut c_char,
        payloadlen: u32,
        qos: u8,
        reason_code: u8,
        retain: bool,
        future2: [*mut c_void; 4],
    }

    /// `struct mosquitto_evt_disconnect` (mosquitto_broker.h).
    struct EvtDisconnect = mosquitto_evt_disconnect {
        future: *mut c_void,
        client: *mut Opaque,
        reason: c_int,
        future2: [*mut c_void; 4],
    }
}

// The layouts on every 64-bit target (8-byte pointers, 4-byte int, 1-byte
// bool), as the headers give them: a wrong field type or order fails the
// build even where the header test cannot run. The padding is where a
// mistake would hide, hence the offsets after the int and byte fields.
#[cfg(target_pointer_width = "64")]
const _: () = {
    use std::mem::offset_of;
    assert!(size_of::<MosquittoOpt>() == 16 && align_of::<MosquittoOpt>() == 8);
    assert!(size_of::<EvtAclCheck>() == 88 && align_of::<EvtAclCheck>() == 8);
    assert!(offset_of!(EvtAclCheck, access) == 40 && offset_of!(EvtAclCheck, payloadlen) == 44);
    assert!(offset_of!(EvtAclCheck, qos) == 48 && offset_of!(EvtAclCheck, retain) == 49);
    assert!(offset_of!(EvtAclCheck, future2) == 56);
    assert!(size_of::<EvtBasicAuth>() == 64 && offset_of!(EvtBasicAuth, future2) == 32);
    assert!(size_of::<EvtMessage>() == 88 && align_of::<EvtMessage>() == 8);
    assert!(offset_of!(EvtMessage, payloadlen) == 48 && offset_of!(EvtMessage, qos) == 52);
    assert!(offset_of!(EvtMessage, reason_code) == 53 && offset_of!(EvtMessage, retain) == 54);
    assert!(offset_of!(EvtMessage, future2) == 56);
    assert!(size_of::<EvtDisconnect>() == 56 && offset_of!(EvtDisconnect, reason) == 16);
    assert!(offset_of!(EvtDisconnect, future2) == 24);
};

type Callback = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> c_int;

// The broker's functions, resolved when Mosquitto loads the plugin. Unit
// tests have no broker to link against: `fake_broker` stands in for them.
#[cfg(not(test))]
unsafe extern "C" {
    fn mosquitto_callback_register(
        identifier: *mut Opaque,
        event: c_int,
        cb: Callback,
        event_data: *const c_void,
        userdata: *mut c_void,
    ) -> c_int;
    fn mosquitto_callback_unregister(
        identifier: *mut Opaque,
        event: c_int,
        cb: Callback,
        event_data: *const c_void,
    ) -> c_int;
    fn mosquitto_client_id(client: *const Opaque) -> *const c_char;
    fn mosquitto_client_address(client: *const Opaque) -> *const c_char;
    fn mosquitto_client_username(client: *const Opaque) -> *const c_char;
    fn mosquitto_client_protocol_version(client: *const Opaque) -> c_int;
    fn mosquitto_client_clean_session(client: *const Opaque) -> bool;
    fn mosquitto_client_keepalive(client: *const Opaque) -> c_int;
    fn mosquitto_strdup(s: *const c_char) -> *mut c_char;
    fn mosquitto_malloc(size: usize) -> *mut c_void;
    fn mosquitto_log_printf(level: c_int, fmt: *const c_char, ...);
}

/// The plugin and the id Mosquitto gave it, kept for unregistering.
struct Instance {
    plugin: Plugin,
    identifier: *mut Opaque,
}

/// Runs the body of an `extern "C"` function (named `what` in the log) and
/// returns its code; if it panics, logs the panic through Mosquitto's log and
/// returns `fallback` instead of letting the panic reach C (which would
/// abort the broker).
///
/// `AssertUnwindSafe` is sound enough here: after a caught panic the plugin
/// keeps serving later callbacks, and its shared state is a mutex whose
/// poisoning `Plugin` recovers from and a hookd client built for concurrent
/// use; the worst outcome is a lost message rewrite, while every fallback
/// fails closed.
fn guarded(what: &str, fallback: c_int, body: impl FnOnce() -> c_int) -> c_int {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a non-text panic payload")
                .to_owned();
            // Never dropped: a payload's Drop could itself panic, here, outside
            // the guard; leaking one small box per panic (a bug) is harmless.
            std::mem::forget(payload);
            fail(
                fallback,
                &format!("{what} panicked ({reason}); returning {fallback}"),
            )
        }
    }
}

/// Mosquitto asks which plugin interface versions this plugin speaks: 5.
///
/// # Safety
/// `versions` points at `count` ints (Mosquitto's contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_version(count: c_int, versions: *const c_int) -> c_int {
    guarded("plugin_version", NO_SUPPORTED_VERSION, || {
        let Ok(count) = usize::try_from(count) else {
            return NO_SUPPORTED_VERSION;
        };
        if versions.is_null() || count == 0 {
            return NO_SUPPORTED_VERSION;
        }
        // SAFETY: Mosquitto passes `count` readable ints.
        let versions = unsafe { slice::from_raw_parts(versions, count) };
        if versions.contains(&PLUGIN_INTERFACE_VERSION) {
            PLUGIN_INTERFACE_VERSION
        } else {
            NO_SUPPORTED_VERSION
        }
    })
}

/// Reads the options, connects to hookd and registers the callbacks. Any
/// non-zero return makes Mosquitto log it and refuse to start.
///
/// # Safety
/// Called once by Mosquitto with a valid identifier, a writable `userdata`
/// and `count` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_init(
    identifier: *mut Opaque,
    userdata: *mut *mut c_void,
    options: *mut MosquittoOpt,
    count: c_int,
) -> c_int {
    guarded("plugin_init", MOSQ_ERR_UNKNOWN, || {
        if userdata.is_null() || identifier.is_null() {
            return fail(
                MOSQ_ERR_INVAL,
                "plugin_init called without identifier or userdata",
            );
        }
        // SAFETY: Mosquitto passes `count` options with NUL-terminated strings.
        let pairs = unsafe { options_of(options, count) };
        let settings = match Settings::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Ok(settings) => settings,
            Err(e) => return fail(MOSQ_ERR_INVAL, &e),
        };
        crate::init_logging();
        // The options were validated above, so what is left is internal (the
        // client's runtime would not start).
        let plugin = match Plugin::start(&settings) {
            Ok(plugin) => plugin,
            Err(e) => return fail(MOSQ_ERR_UNKNOWN, &format!("starting the hookd client: {e}")),
        };
        let instance = Box::into_raw(Box::new(Instance { plugin, identifier }));
        for (event, cb) in CALLBACKS {
            // SAFETY: identifier is Mosquitto's; the callbacks match the
            // generic callback type; `instance` lives until cleanup.
            let rc =
                unsafe { mosquitto_callback_register(identifier, event, cb, ptr::null(), instance.cast()) };
            if rc != MOSQ_ERR_SUCCESS {
                // SAFETY: undo what was registered, then free the instance once.
                unsafe {
                    unregister_all(identifier);
                    drop(Box::from_raw(instance));
                }
                // Mosquitto's own code (NOMEM, ALREADY_EXISTS, NOT_SUPPORTED...)
                // says best why.
                return fail(rc, &format!("registering event {event} failed ({rc})"));
            }
        }
        // SAFETY: userdata is writable (checked non-null above).
        unsafe { *userdata = instance.cast() };
        MOSQ_ERR_SUCCESS
    })
}

/// Unregisters the callbacks and frees the plugin.
///
/// # Safety
/// Called once by Mosquitto with the `userdata` that init stored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_cleanup(
    userdata: *mut c_void,
    _options: *mut MosquittoOpt,
    _count: c_int,
) -> c_int {
    guarded("plugin_cleanup", MOSQ_ERR_UNKNOWN, || {
        if userdata.is_null() {
            return MOSQ_ERR_SUCCESS;
        }
        // SAFETY: userdata is the Box leaked in init, freed only here.
        let instance = unsafe { Box::from_raw(userdata.cast::<Instance>()) };
        // SAFETY: the identifier is still Mosquitto's during cleanup.
        unsafe { unregister_all(instance.identifier) };
        MOSQ_ERR_SUCCESS
    })
}

const CALLBACKS: [(c_int, Callback); 4] = [
    (MOSQ_EVT_BASIC_AUTH, on_basic_auth),
    (MOSQ_EVT_ACL_CHECK, on_acl_check),
    (MOSQ_EVT_MESSAGE, on_message),
    (MOSQ_EVT_DISCONNECT, on_disconnect),
];

unsafe fn unregister_all(identifier: *mut Opaque) {
    for (event, cb) in CALLBACKS {
        // SAFETY: unregistering a callback that may not be registered is
        // harmless (MOSQ_ERR_NOT_FOUND).
        unsafe { mosquitto_callback_unregister(identifier, event, cb, ptr::null()) };
    }
}

/// On a panic: refuse the connection (fail closed).
unsafe extern "C" fn on_basic_auth(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
    guarded("basic_auth", MOSQ_ERR_AUTH, || {
        // SAFETY: see the module invariants: data is an EvtBasicAuth, userdata our Instance.
        let (ed, plugin) = unsafe {
            (
                &*data.cast::<EvtBasicAuth>(),
                &(*userdata.cast::<Instance>()).plugin,
            )
        };
        // SAFETY: client is the live client of this event; its address is
        // fetched only here, the one event that sends it.
        let client = unsafe {
            ClientInfo {
                address: borrowed_text(mosquitto_client_address(ed.client)).unwrap_or_default(),
                ..client_info(ed.client)
            }
        };
        // SAFETY: username/password are NUL-terminated or NULL.
        let (username, password) = unsafe { (text(ed.username), bytes(ed.password)) };
        match plugin.basic_auth(&client, username.as_deref(), password) {
            Decision::Allow => MOSQ_ERR_SUCCESS,
            Decision::Deny => MOSQ_ERR_AUTH,
            Decision::Defer => MOSQ_ERR_PLUGIN_DEFER,
        }
    })
}

/// On a panic: deny the publish, subscription or delivery (fail closed).
unsafe extern "C" fn on_acl_check(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
    guarded("acl_check", MOSQ_ERR_ACL_DENIED, || {
        // SAFETY: see the module invariants.
        let (ed, plugin) = unsafe {
            (
                &*data.cast::<EvtAclCheck>(),
                &(*userdata.cast::<Instance>()).plugin,
            )
        };
        let access = match ed.access {
            MOSQ_ACL_READ => Access::Read,
            MOSQ_ACL_WRITE => Access::Write,
            MOSQ_ACL_SUBSCRIBE => Access::Subscribe,
            MOSQ_ACL_UNSUBSCRIBE => Access::Unsubscribe,
            _ => Access::Other,
        };
        // SAFETY: client, topic and payload are valid for this event.
        let (client, topic, payload) = unsafe {
            (
                client_info(ed.client),
                borrowed_text(ed.topic).unwrap_or_default(),
                payload(ed.payload, ed.payloadlen),
            )
        };
        let message = Message {
            topic: &topic,
            payload,
            qos: ed.qos,
            retain: ed.retain,
        };
        match plugin.acl_check(&client, access, message) {
            Decision::Allow => MOSQ_ERR_SUCCESS,
            Decision::Deny => MOSQ_ERR_ACL_DENIED,
            Decision::Defer => MOSQ_ERR_PLUGIN_DEFER,
        }
    })
}

/// On a panic: an error, on which Mosquitto 2.0 drops the message (and
/// disconnects its sender) rather than route it without its rewrite.
unsafe extern "C" fn on_message(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
    guarded("message", MOSQ_ERR_UNKNOWN, || {
        // SAFETY: see the module invariants; the event struct is ours to edit.
        let (ed, plugin) = unsafe {
            (
                &mut *data.cast::<EvtMessage>(),
                &(*userdata.cast::<Instance>()).plugin,
            )
        };
        // SAFETY: client, topic and payload are valid for this event.
        let (client, topic, body) = unsafe {
            (
                client_info(ed.client),
                borrowed_text(ed.topic).unwrap_or_default(),
                payload(ed.payload, ed.payloadlen),
            )
        };
        let message = Message {
            topic: &topic,
            payload: body,
            qos: ed.qos,
            retain: ed.retain,
        };
        let rewrite = plugin.message(&client, message);
        if let Some(topic) = rewrite.topic {
            let Ok(topic) = CString::new(topic) else {
                return MOSQ_ERR_INVAL;
            };
            // SAFETY: strdup copies the NUL-terminated string into broker memory.
            let copy = unsafe { mosquitto_strdup(topic.as_ptr()) };
            if copy.is_null() {
                return MOSQ_ERR_NOMEM;
            }
            ed.topic = copy;
        }
        if let Some(new_payload) = rewrite.payload {
            let Ok(len) = u32::try_from(new_payload.len()) else {
                return MOSQ_ERR_INVAL;
            };
            // SAFETY: a buffer of `len` bytes (at least 1, so never NULL for an
            // empty payload) from the broker's allocator, filled before use.
            let buffer = unsafe { mosquitto_malloc(new_payload.len().max(1)) };
            if buffer.is_null() {
                return MOSQ_ERR_NOMEM;
            }
            // SAFETY: `buffer` has room for `new_payload.len()` bytes.
            unsafe { ptr::copy_nonoverlapping(new_payload.as_ptr(), buffer.cast::<u8>(), new_payload.len()) };
            ed.payload = buffer;
            ed.payloadlen = len;
        }
        if let Some(retain) = rewrite.retain {
            ed.retain = retain;
        }
        MOSQ_ERR_SUCCESS
    })
}

/// On a panic: an error code, which Mosquitto ignores for disconnects (the
/// client is gone either way); only the log line remains.
unsafe extern "C" fn on_disconnect(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
    guarded("disconnect", MOSQ_ERR_UNKNOWN, || {
        // SAFETY: see the module invariants.
        let (ed, plugin) = unsafe {
            (
                &*data.cast::<EvtDisconnect>(),
                &(*userdata.cast::<Instance>()).plugin,
            )
        };
        // SAFETY: client is valid for this event.
        let client = unsafe { client_info(ed.client) };
        plugin.disconnect(&client);
        MOSQ_ERR_SUCCESS
    })
}

/// The client of an event, without its address (which only basic auth
/// sends; leaving it out saves an allocation on every publish).
///
/// # Safety
/// `client` is a live client of the current event, and the returned texts
/// (borrowed from it) do not outlive that event.
unsafe fn client_info<'a>(client: *mut Opaque) -> ClientInfo<'a> {
    if client.is_null() {
        return ClientInfo::default();
    }
    // SAFETY: accessors on a live client return NUL-terminated strings or NULL.
    unsafe {
        ClientInfo {
            id: borrowed_text(mosquitto_client_id(client)).unwrap_or_default(),
            address: Cow::Borrowed(""),
            username: borrowed_text(mosquitto_client_username(client)),
            protocol_version: mosquitto_client_protocol_version(client),
            clean_session: mosquitto_client_clean_session(client),
            // 0..=65535 by the protocol; anything else reads as "none".
            keepalive: u16::try_from(mosquitto_client_keepalive(client)).unwrap_or(0),
        }
    }
}

/// # Safety
/// `s` is NUL-terminated or NULL.
unsafe fn text(s: *const c_char) -> Option<String> {
    // SAFETY: per the function contract.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

/// Like [`text`], borrowing when the text is valid UTF-8 (a topic always
/// is: MQTT requires it).
///
/// # Safety
/// `s` is NUL-terminated or NULL and outlives the returned text.
unsafe fn borrowed_text<'a>(s: *const c_char) -> Option<Cow<'a, str>> {
    // SAFETY: per the function contract.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy())
}

/// # Safety
/// `s` is NUL-terminated or NULL and outlives the returned slice.
unsafe fn bytes<'a>(s: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: per the function contract.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_bytes())
}

/// # Safety
/// `p` points at `len` readable bytes, or is NULL, and outlives the slice.
unsafe fn payload<'a>(p: *const c_void, len: u32) -> &'a [u8] {
    if p.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: per the function contract.
    unsafe { slice::from_raw_parts(p.cast::<u8>(), len as usize) }
}

/// # Safety
/// `options` points at `count` options with NUL-terminated strings, or is NULL.
unsafe fn options_of(options: *mut MosquittoOpt, count: c_int) -> Vec<(String, String)> {
    let Ok(count) = usize::try_from(count) else {
        return Vec::new();
    };
    if options.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: per the function contract.
    let options = unsafe { slice::from_raw_parts(options, count) };
    options
        .iter()
        // SAFETY: keys and values are NUL-terminated or NULL.
        .map(|o| unsafe { (text(o.key).unwrap_or_default(), text(o.value).unwrap_or_default()) })
        .collect()
}

/// Logs `message` as an error through Mosquitto's log (beside the broker's
/// own lines, where operators look) and returns `code`, the `MOSQ_ERR_*` that
/// tells Mosquitto what failed.
fn fail(code: c_int, message: &str) -> c_int {
    // A NUL would cut the text short; replaced, `new` cannot fail.
    let text = CString::new(format!("hookd plugin: {message}").replace('\0', " ")).unwrap_or_default();
    // SAFETY: a constant "%s" format with one NUL-terminated string argument.
    unsafe { mosquitto_log_printf(MOSQ_LOG_ERR, c"%s".as_ptr(), text.as_ptr()) };
    code
}

/// Stand-ins for the broker's functions in unit tests, which run without a
/// broker to resolve them: same names and signatures as the `extern` block,
/// recording what the plugin asks of them in thread-locals (each test runs
/// on its own thread).
#[cfg(test)]
mod fake_broker {
    use std::{
        cell::RefCell,
        ffi::{CStr, c_char, c_int, c_void},
    };

    use super::{Callback, MOSQ_ERR_SUCCESS, Opaque};

    thread_local! {
        /// Every `mosquitto_log_printf` call: level and text.
        pub static LOG: RefCell<Vec<(c_int, String)>> = const { RefCell::new(Vec::new()) };
        /// The events with a registered callback.
        pub static REGISTERED: RefCell<Vec<c_int>> = const { RefCell::new(Vec::new()) };
    }

    /// The panic every client accessor raises: unit tests have no clients,
    /// which makes any callback panic once it looks at its client.
    pub const NO_CLIENTS: &str = "fake broker: no clients in unit tests";

    /// Records `event` as registered.
    pub unsafe fn mosquitto_callback_register(
        _identifier: *mut Opaque,
        event: c_int,
        _cb: Callback,
        _event_data: *const c_void,
        _userdata: *mut c_void,
    ) -> c_int {
        REGISTERED.with_borrow_mut(|events| events.push(event));
        MOSQ_ERR_SUCCESS
    }

    /// Forgets `event`'s registration.
    pub unsafe fn mosquitto_callback_unregister(
        _identifier: *mut Opaque,
        event: c_int,
        _cb: Callback,
        _event_data: *const c_void,
    ) -> c_int {
        REGISTERED.with_borrow_mut(|events| events.retain(|&e| e != event));
        MOSQ_ERR_SUCCESS
    }

    /// Panics with [`NO_CLIENTS`], as do the other client accessors.
    pub unsafe fn mosquitto_client_id(_client: *const Opaque) -> *const c_char {
        panic!("{NO_CLIENTS}")
    }

    /// Panics with [`NO_CLIENTS`].
    pub unsafe fn mosquitto_client_address(_client: *const Opaque) -> *const c_char {
        panic!("{NO_CLIENTS}")
    }

    /// Panics with [`NO_CLIENTS`].
    pub unsafe fn mosquitto_client_username(_client: *const Opaque) -> *const c_char {
        panic!("{NO_CLIENTS}")
    }

    /// Panics with [`NO_CLIENTS`].
    pub unsafe fn mosquitto_client_protocol_version(_client: *const Opaque) -> c_int {
        panic!("{NO_CLIENTS}")
    }

    /// Panics with [`NO_CLIENTS`].
    pub unsafe fn mosquitto_client_clean_session(_client: *const Opaque) -> bool {
        panic!("{NO_CLIENTS}")
    }

    /// Panics with [`NO_CLIENTS`].
    pub unsafe fn mosquitto_client_keepalive(_client: *const Opaque) -> c_int {
        panic!("{NO_CLIENTS}")
    }

    /// Out of memory: unit tests never get as far as a rewrite.
    pub unsafe fn mosquitto_strdup(_s: *const c_char) -> *mut c_char {
        std::ptr::null_mut()
    }

    /// Out of memory, as [`mosquitto_strdup`].
    pub unsafe fn mosquitto_malloc(_size: usize) -> *mut c_void {
        std::ptr::null_mut()
    }

    /// The one call shape the plugin uses: a `"%s"` format and one string.
    pub unsafe fn mosquitto_log_printf(level: c_int, fmt: *const c_char, text: *const c_char) {
        // SAFETY: `fail` passes two NUL-terminated strings.
        let (fmt, text) = unsafe { (CStr::from_ptr(fmt), CStr::from_ptr(text)) };
        assert_eq!(fmt, c"%s");
        LOG.with_borrow_mut(|log| log.push((level, text.to_string_lossy().into_owned())));
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, fmt::Write as _, process::Command};

    use super::*;

    /// A struct's Rust layout: size, alignment and (name, offset, size) of
    /// each field.
    pub struct CStruct {
        /// The C struct's name, without `struct`.
        pub c_name: &'static str,
        /// `size_of` the Rust struct.
        pub size: usize,
        /// `align_of` the Rust struct.
        pub align: usize,
        /// `(name, offset_of, size_of)` of each field.
        pub fields: &'static [(&'static str, usize, usize)],
    }

    /// Every value the header test compares, as `(key, Rust value)`; the C
    /// program prints the same keys with the headers' values.
    fn rust_values() -> BTreeMap<String, i64> {
        let mut values = BTreeMap::new();
        let usize_value = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        for s in C_STRUCTS {
            values.insert(format!("{}.sizeof", s.c_name), usize_value(s.size));
            values.insert(format!("{}.alignof", s.c_name), usize_value(s.align));
            for &(field, offset, size) in s.fields {
                values.insert(format!("{}.{field}.offsetof", s.c_name), usize_value(offset));
                values.insert(format!("{}.{field}.sizeof", s.c_name), usize_value(size));
            }
        }
        for &(name, value) in HEADER_CONSTANTS {
            values.insert(name.to_owned(), i64::from(value));
        }
        values
    }

    /// A C program that prints, for the keys of [`rust_values`], the values
    /// the installed headers give; or `missing-headers` without them.
    fn probe_source() -> String {
        let mut c = String::from(
            "#include <stddef.h>\n\
             #include <stdio.h>\n\
             #if __has_include(<mosquitto.h>) && __has_include(<mosquitto_broker.h>) \
             && __has_include(<mosquitto_plugin.h>)\n\
             #include <mosquitto.h>\n\
             #include <mosquitto_broker.h>\n\
             #include <mosquitto_plugin.h>\n\
             #define HAVE_HEADERS 1\n\
             #endif\n\
             int main(void) {\n\
             #ifndef HAVE_HEADERS\n\
             \tputs(\"missing-headers\");\n\
             #else\n",
        );
        for s in C_STRUCTS {
            let name = s.c_name;
            let _ = writeln!(c, "\tprintf(\"{name}.sizeof %zu\\n\", sizeof(struct {name}));");
            let _ = writeln!(c, "\tprintf(\"{name}.alignof %zu\\n\", _Alignof(struct {name}));");
            for (field, _, _) in s.fields {
                let _ = writeln!(
                    c,
                    "\tprintf(\"{name}.{field}.offsetof %zu\\n\", offsetof(struct {name}, {field}));"
                );
                let _ = writeln!(
                    c,
                    "\tprintf(\"{name}.{field}.sizeof %zu\\n\", sizeof(((struct {name} *)0)->{field}));"
                );
            }
        }
        for (name, _) in HEADER_CONSTANTS {
            let _ = writeln!(c, "\tprintf(\"{name} %lld\\n\", (long long)({name}));");
        }
        c.push_str("#endif\n\treturn 0;\n}\n");
        c
    }

    /// Skips (with a message) outside CI; fails in CI, where the headers
    /// and a C compiler are installed on purpose.
    fn unavailable(why: &str) {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "CI=true but {why}");
        eprintln!("SKIPPED layouts_and_constants_match_the_installed_headers: {why}");
    }

    #[test]
    fn layouts_and_constants_match_the_installed_headers() {
        let dir = std::env::temp_dir().join(format!("hookd-mosquitto-abi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        let (source, exe) = (dir.join("probe.c"), dir.join("probe"));
        std::fs::write(&source, probe_source()).expect("write the C probe");
        let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        let compiled = Command::new(&compiler)
            .args(["-std=c11", "-Wall", "-Werror", "-o"])
            .arg(&exe)
            .arg(&source)
            .output();
        let compiled = match compiled {
            Ok(output) => output,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return unavailable(&format!("no C compiler `{compiler}` ({e})"));
            }
        };
        // Not a skip: a field the header lacks is a compile error here.
        assert!(
            compiled.status.success(),
            "the C probe did not compile:\n{}\n{}",
            String::from_utf8_lossy(&compiled.stderr),
            probe_source()
        );
        let ran = Command::new(&exe).output().expect("run the C probe");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(ran.status.success(), "the C probe failed");
        let stdout = String::from_utf8_lossy(&ran.stdout);
        if stdout.trim() == "missing-headers" {
            return unavailable(
                "Mosquitto's headers are not installed (apt-get install mosquitto-dev libmosquitto-dev: \
                 mosquitto.h is in libmosquitto-dev)",
            );
        }
        let from_c: BTreeMap<String, i64> = stdout
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(' ')?;
                Some((key.to_owned(), value.parse().ok()?))
            })
            .collect();
        let expected = rust_values();
        let mismatches: Vec<String> = expected
            .iter()
            .filter(|&(key, rust)| from_c.get(key) != Some(rust))
            .map(|(key, rust)| format!("{key}: Rust {rust}, C {:?}", from_c.get(key)))
            .collect();
        for (key, value) in &from_c {
            eprintln!("{key} = {value}");
        }
        assert!(
            mismatches.is_empty(),
            "differ from the headers:\n{}",
            mismatches.join("\n")
        );
        assert_eq!(
            from_c.len(),
            expected.len(),
            "the probe printed other keys: {stdout}"
        );
    }

    #[test]
    fn guarded_returns_the_body_code_or_logs_a_panic_and_falls_back() {
        assert_eq!(
            guarded("test", MOSQ_ERR_AUTH, || MOSQ_ERR_SUCCESS),
            MOSQ_ERR_SUCCESS
        );
        assert!(LOG.with_borrow(Vec::is_empty));
        assert_eq!(guarded("test", MOSQ_ERR_AUTH, || panic!("boom")), MOSQ_ERR_AUTH);
        let code = guarded("test", MOSQ_ERR_ACL_DENIED, || {
            panic!("{}", String::from("formatted"))
        });
        assert_eq!(code, MOSQ_ERR_ACL_DENIED);
        let log = LOG.take();
        assert_eq!(
            log,
            [
                (
                    MOSQ_LOG_ERR,
                    "hookd plugin: test panicked (boom); returning 11".to_owned()
                ),
                (
                    MOSQ_LOG_ERR,
                    "hookd plugin: test panicked (formatted); returning 12".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn plugin_version_is_5_or_none() {
        // SAFETY: each pointer is to `count` ints, or NULL.
        unsafe {
            assert_eq!(mosquitto_plugin_version(3, [3, 4, 5].as_ptr()), 5);
            assert_eq!(mosquitto_plugin_version(2, [3, 4].as_ptr()), NO_SUPPORTED_VERSION);
            assert_eq!(mosquitto_plugin_version(1, ptr::null()), NO_SUPPORTED_VERSION);
            assert_eq!(mosquitto_plugin_version(-1, [5].as_ptr()), NO_SUPPORTED_VERSION);
        }
    }

    /// A non-null identifier for init: the plugin only hands it back to the
    /// (fake) broker, never dereferences it.
    fn identifier() -> *mut Opaque {
        ptr::NonNull::dangling().as_ptr()
    }

    #[test]
    fn init_refuses_bad_options_with_inval() {
        let (key, value) = (c"policy", c"maybe");
        let mut options = [MosquittoOpt {
            key: key.as_ptr().cast_mut(),
            value: value.as_ptr().cast_mut(),
        }];
        let mut userdata = ptr::null_mut();
        // SAFETY: one option of NUL-terminated strings (never written), a
        // writable userdata, an identifier only passed back to the fakes.
        let rc = unsafe { mosquitto_plugin_init(identifier(), &mut userdata, options.as_mut_ptr(), 1) };
        assert_eq!(rc, MOSQ_ERR_INVAL);
        assert!(userdata.is_null());
        let log = LOG.take();
        assert_eq!(log.len(), 1);
        assert!(log[0].1.contains("plugin_opt_policy"), "{log:?}");
        // SAFETY: a NULL userdata is refused before it is written.
        let rc = unsafe { mosquitto_plugin_init(identifier(), ptr::null_mut(), ptr::null_mut(), 0) };
        assert_eq!(rc, MOSQ_ERR_INVAL);
    }

    /// Every callback fails closed when its body panics (here: the fake
    /// broker's client accessors), and cleanup undoes init.
    #[test]
    fn callbacks_fail_closed_on_a_panic() {
        let (key, value) = (c"hookd_addresses", c"127.0.0.1:9");
        let mut options = [MosquittoOpt {
            key: key.as_ptr().cast_mut(),
            value: value.as_ptr().cast_mut(),
        }];
        let mut userdata = ptr::null_mut();
        // SAFETY: as in `init_refuses_bad_options_with_inval`.
        let rc = unsafe { mosquitto_plugin_init(identifier(), &mut userdata, options.as_mut_ptr(), 1) };
        assert_eq!(rc, MOSQ_ERR_SUCCESS, "{:?}", LOG.take());
        assert_eq!(
            REGISTERED.with_borrow(Clone::clone),
            [
                MOSQ_EVT_BASIC_AUTH,
                MOSQ_EVT_ACL_CHECK,
                MOSQ_EVT_MESSAGE,
                MOSQ_EVT_DISCONNECT
            ]
        );
        let fallbacks = [
            MOSQ_ERR_AUTH,
            MOSQ_ERR_ACL_DENIED,
            MOSQ_ERR_UNKNOWN,
            MOSQ_ERR_UNKNOWN,
        ];
        for ((event, cb), fallback) in CALLBACKS.into_iter().zip(fallbacks) {
            // Large enough and aligned for every event struct; all-zero is
            // valid for them (pointers, integers, bools), then the client is
            // set to a non-null pointer, the only field read before the panic.
            let mut data = [0_u64; 16];
            let client: *mut Opaque = ptr::NonNull::dangling().as_ptr();
            // SAFETY: every event struct starts with `future` then `client`.
            unsafe { data.as_mut_ptr().cast::<*mut Opaque>().add(1).write(client) };
            // SAFETY: data holds an event struct of the callback's kind;
            // userdata is the Instance init stored.
            let rc = unsafe { cb(event, data.as_mut_ptr().cast(), userdata) };
            assert_eq!(rc, fallback, "event {event}");
            let log = LOG.take();
            assert!(
                log.len() == 1 && log[0].1.contains(fake_broker::NO_CLIENTS),
                "{log:?}"
            );
        }
        // SAFETY: the userdata init stored, freed once.
        let rc = unsafe { mosquitto_plugin_cleanup(userdata, ptr::null_mut(), 0) };
        assert_eq!(rc, MOSQ_ERR_SUCCESS);
        assert!(REGISTERED.with_borrow(Vec::is_empty));
    }
}
