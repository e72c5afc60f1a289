pub mod consts;

pub use consts::CantMakeError;
pub use consts::EReadWrite;
pub use consts::ESTLType;
pub use consts::Enum;
pub use consts::EnumNamed;
