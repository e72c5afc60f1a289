pub mod error;
pub mod factory;

pub use factory::FactoryItemRead;
pub use factory::FACTORY;

pub(crate) use error::Error;
use error::Result;
