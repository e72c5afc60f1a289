pub type Result<T> = core::result::Result<T, Error>;

#[derive(Debug)]
pub enum Error {
    StreamerCanNotFoundProperty(String),
    StreamerCanNotFoundClass(String),
    StreamerReadDumpError(String),
}
