/// Package rcont contains the definitions of ROOT container types, such as
/// TList, THashList and TObjArray.
pub mod list;
pub mod objarray;
pub mod tmap;

pub use tmap::TMap;
