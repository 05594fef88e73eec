//! The browser entry point of darts-pt: `web/build.sh` compiles this crate to
//! `wasm32-unknown-unknown` and `wasm-bindgen` writes `web/pkg/darts_pt_web.js`, which
//! `web/index.html` loads. Everything else lives in the engine crate's `web` module.

use wasm_bindgen::prelude::wasm_bindgen;

/// Called by `wasm-bindgen`'s glue when the module is instantiated.
#[wasm_bindgen(start)]
pub async fn start() {
    darts_pt::web::start().await;
}
