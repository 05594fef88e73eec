//! The browser entry point of darts-pt: `web/build.sh` compiles this crate to
//! `wasm32-unknown-unknown` and `wasm-bindgen` writes `web/pkg/darts_pt_web.js`, which
//! `web/index.html` loads. Everything else lives in the engine crate's `web` module.

use wasm_bindgen::prelude::wasm_bindgen;

unsafe extern "C" {
    /// The module's static constructors (about 4,900 here: the op and dialect registrations of
    /// CubeCL's IR, collected with `inventory`/`linkme`), synthesised by wasm-ld.
    ///
    /// A module that never calls this function is linked "command style": wasm-ld then wraps
    /// *every* export (`__wbindgen_malloc`, `__wbindgen_free`, `__externref_table_alloc`, …, which
    /// the JS glue calls for each string and each WebGPU object crossing into Rust) so that it runs
    /// all constructors again first. That was 90 % of the page's CPU time during a run. Calling it
    /// once here, from the start function, makes wasm-ld leave the exports unwrapped;
    /// `web/build.sh` fails if a wrapper (`.command_export`) is still in the module.
    fn __wasm_call_ctors();
}

/// Called by `wasm-bindgen`'s glue when the module is instantiated: run the static constructors
/// once, then start the app.
#[wasm_bindgen(start)]
pub fn start() {
    // SAFETY: the start function runs once, before any other Rust code of the module, and
    // nothing has read a constructor-filled registry yet.
    unsafe { __wasm_call_ctors() };
    wasm_bindgen_futures::spawn_local(darts_pt::web::start());
}
