//! OpenID Connect, framework-free: signing keys and JWKS, ID tokens, the user's claims,
//! discovery. `web` serves them; `oauth` asks for ID tokens through `IdTokenSigner`.

pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod keys;
pub mod logout;
pub mod sealing;
pub mod userinfo;

pub use claims::ClaimsRequest;
pub use id_token::IdTokens;
pub use keys::{KeyAdmin, KeyError, KeyRing};
pub use sealing::KeySealer;
