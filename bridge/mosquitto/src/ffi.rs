//! The only `unsafe` code of hookd: the Mosquitto 2.0 plugin interface
//! (version 5), hand-checked against Debian 12's `mosquitto_broker.h` and
//! `mosquitto_plugin.h` (Mosquitto 2.0.11).
//!
//! Invariants this module relies on, from Mosquitto's plugin contract:
//! - Every callback runs on Mosquitto's main thread, with `event_data`
//!   pointing at a live event struct of the layout declared below for that
//!   event, valid for the duration of the callback.
//! - `char *` fields are NUL-terminated or NULL; `payload` points at
//!   `payloadlen` bytes or is NULL.
//! - `userdata` is the pointer `mosquitto_plugin_init` stored: a leaked
//!   `Box<Plugin>`, freed exactly once in `mosquitto_plugin_cleanup`.
//! - To rewrite a message, a callback points `topic`/`payload` at new buffers
//!   from `mosquitto_strdup` / `mosquitto_malloc` and must not free the old
//!   ones: the broker compares pointers and frees the originals itself.
//!
//! Everything else (what to ask hookd, what to answer) is safe Rust in
//! [`crate::plugin`]; this module only converts.

#![allow(unsafe_code)]

use std::{
    borrow::Cow,
    ffi::{CStr, c_char, c_int, c_void},
    ptr, slice,
};

use crate::plugin::{Access, ClientInfo, Decision, Message, Plugin, Settings};

const MOSQ_ERR_SUCCESS: c_int = 0;
const MOSQ_ERR_NOMEM: c_int = 1;
const MOSQ_ERR_INVAL: c_int = 3;
const MOSQ_ERR_AUTH: c_int = 11;
const MOSQ_ERR_ACL_DENIED: c_int = 12;
const MOSQ_ERR_PLUGIN_DEFER: c_int = 17;

const MOSQ_EVT_ACL_CHECK: c_int = 2;
const MOSQ_EVT_BASIC_AUTH: c_int = 3;
const MOSQ_EVT_MESSAGE: c_int = 7;
const MOSQ_EVT_DISCONNECT: c_int = 10;

const MOSQ_ACL_READ: c_int = 0x01;
const MOSQ_ACL_WRITE: c_int = 0x02;
const MOSQ_ACL_SUBSCRIBE: c_int = 0x04;

const MOSQ_LOG_ERR: c_int = 1 << 3;

/// `struct mosquitto` and `mosquitto_plugin_id_t`: opaque to plugins.
#[repr(C)]
pub struct Opaque {
    _private: [u8; 0],
}

/// `struct mosquitto_opt`.
#[repr(C)]
pub struct MosquittoOpt {
    key: *mut c_char,
    value: *mut c_char,
}

#[repr(C)]
struct EvtAclCheck {
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

#[repr(C)]
struct EvtBasicAuth {
    future: *mut c_void,
    client: *mut Opaque,
    username: *mut c_char,
    password: *mut c_char,
    future2: [*mut c_void; 4],
}

#[repr(C)]
struct EvtMessage {
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

#[repr(C)]
struct EvtDisconnect {
    future: *mut c_void,
    client: *mut Opaque,
    reason: c_int,
    future2: [*mut c_void; 4],
}

type Callback = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> c_int;

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
    fn mosquitto_strdup(s: *const c_char) -> *mut c_char;
    fn mosquitto_malloc(size: usize) -> *mut c_void;
    fn mosquitto_log_printf(level: c_int, fmt: *const c_char, ...);
}

/// The plugin and the id Mosquitto gave it, kept for unregistering.
struct Instance {
    plugin: Plugin,
    identifier: *mut Opaque,
}

/// Mosquitto asks which plugin interface versions this plugin speaks: 5.
///
/// # Safety
/// `versions` points at `count` ints (Mosquitto's contract).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_version(count: c_int, versions: *const c_int) -> c_int {
    if versions.is_null() || count <= 0 {
        return -1;
    }
    // SAFETY: Mosquitto passes `count` readable ints.
    let versions = unsafe { slice::from_raw_parts(versions, count as usize) };
    if versions.contains(&5) { 5 } else { -1 }
}

/// Reads the options, connects to hookd and registers the callbacks.
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
    if userdata.is_null() || identifier.is_null() {
        return MOSQ_ERR_INVAL;
    }
    // SAFETY: Mosquitto passes `count` options with NUL-terminated strings.
    let pairs = unsafe { options_of(options, count) };
    let settings = match Settings::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(settings) => settings,
        Err(e) => return fail(&format!("hookd plugin: {e}")),
    };
    crate::init_logging();
    let plugin = match Plugin::start(&settings) {
        Ok(plugin) => plugin,
        Err(e) => return fail(&format!("hookd plugin: {e}")),
    };
    let instance = Box::into_raw(Box::new(Instance { plugin, identifier }));
    for (event, cb) in CALLBACKS {
        // SAFETY: identifier is Mosquitto's; the callbacks match the
        // generic callback type; `instance` lives until cleanup.
        let rc = unsafe { mosquitto_callback_register(identifier, event, cb, ptr::null(), instance.cast()) };
        if rc != MOSQ_ERR_SUCCESS {
            // SAFETY: undo what was registered, then free the instance once.
            unsafe {
                unregister_all(identifier);
                drop(Box::from_raw(instance));
            }
            return fail(&format!("hookd plugin: registering event {event} failed ({rc})"));
        }
    }
    // SAFETY: userdata is writable (checked non-null above).
    unsafe { *userdata = instance.cast() };
    MOSQ_ERR_SUCCESS
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
    if userdata.is_null() {
        return MOSQ_ERR_SUCCESS;
    }
    // SAFETY: userdata is the Box leaked in init, freed only here.
    let instance = unsafe { Box::from_raw(userdata.cast::<Instance>()) };
    // SAFETY: the identifier is still Mosquitto's during cleanup.
    unsafe { unregister_all(instance.identifier) };
    MOSQ_ERR_SUCCESS
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

unsafe extern "C" fn on_basic_auth(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
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
}

unsafe extern "C" fn on_acl_check(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
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
}

unsafe extern "C" fn on_message(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
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
        let Ok(topic) = std::ffi::CString::new(topic) else {
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
}

unsafe extern "C" fn on_disconnect(_event: c_int, data: *mut c_void, userdata: *mut c_void) -> c_int {
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
    if options.is_null() || count <= 0 {
        return Vec::new();
    }
    // SAFETY: per the function contract.
    let options = unsafe { slice::from_raw_parts(options, count as usize) };
    options
        .iter()
        // SAFETY: keys and values are NUL-terminated or NULL.
        .map(|o| unsafe { (text(o.key).unwrap_or_default(), text(o.value).unwrap_or_default()) })
        .collect()
}

/// Logs `message` through Mosquitto's log and returns a failure code.
fn fail(message: &str) -> c_int {
    let text = std::ffi::CString::new(message.replace('\0', " ")).unwrap_or_default();
    // SAFETY: a constant "%s" format with one NUL-terminated string argument.
    unsafe { mosquitto_log_printf(MOSQ_LOG_ERR, c"%s".as_ptr(), text.as_ptr()) };
    1
}
