pub mod accounts;
pub mod assets;
pub mod authorize;
pub mod device;
pub mod health;
pub mod home;
pub mod metadata;
pub mod oauth;
