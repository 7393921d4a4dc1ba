//! A local control socket beside the database file (`<database>.ctl`, mode 0600), so that
//! commands which must write while the server holds the file run inside the server.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::commands::{self, Command, CommandContext, CommandError};
use crate::fixtures::Source;

/// Largest request accepted (fixture files travel inside it).
const MAX_REQUEST: u64 = 64 * 1024 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    ok: bool,
    output: String,
}

pub fn socket_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".ctl");
    PathBuf::from(path)
}

/// The listening socket; the file is removed when this is dropped.
pub struct ControlSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ControlSocket {
    /// Binds the socket. Only the process that holds the database lock calls this, so a file
    /// left at the path is from a process that died and is replaced.
    pub fn bind(database: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let path = socket_path(database);
        if path.exists() {
            std::fs::remove_file(&path)?;
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self { path, listener })
    }

    pub async fn serve(self, context: CommandContext) {
        let context = std::sync::Arc::new(context);
        loop {
            match self.listener.accept().await {
                Ok((stream, _)) if !self.same_user(&stream) => {
                    tracing::warn!("control socket: refused a connection from another user");
                }
                Ok((stream, _)) => {
                    let context = context.clone();
                    tokio::spawn(async move { answer(stream, &context).await });
                }
                Err(error) => {
                    tracing::warn!("control socket: {error}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

impl ControlSocket {
    /// Whether the peer runs as the user who owns the socket (or as root). The socket's mode
    /// already keeps others out; this also closes the moment between bind and chmod.
    fn same_user(&self, stream: &UnixStream) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(peer) = stream.peer_cred() else {
            return false;
        };
        let owner = std::fs::metadata(&self.path).map(|meta| meta.uid());
        peer.uid() == 0 || owner.is_ok_and(|owner| owner == peer.uid())
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn answer(stream: UnixStream, context: &CommandContext) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    let reply = match (&mut reader).take(MAX_REQUEST).read_line(&mut line).await {
        Err(error) => Reply {
            ok: false,
            output: format!("cannot read the request: {error}"),
        },
        Ok(_) => match serde_json::from_str::<Command>(&line) {
            Err(error) => Reply {
                ok: false,
                output: format!("malformed request: {error}"),
            },
            Ok(command) => {
                let mut spooled = Spooled::default();
                let result = match spool(command, &mut reader, context, &mut spooled).await {
                    Ok(command) => commands::execute(context, command).await,
                    Err(error) => Err(error),
                };
                drop(spooled);
                match result {
                    Ok(output) => Reply { ok: true, output },
                    Err(error) => Reply {
                        ok: false,
                        output: error.to_string(),
                    },
                }
            }
        },
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_default();
    text.push('\n');
    let _ = write.write_all(text.as_bytes()).await;
}

/// Files a `loaddata` sent after its request, removed when the load is over.
#[derive(Default)]
struct Spooled(Vec<PathBuf>);

impl Drop for Spooled {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes the bytes of each `Incoming` fixture to an owner-only file beside the database (a
/// dump of millions of tokens is streamed, never held in memory), and names the files instead.
async fn spool(
    command: Command,
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    context: &CommandContext,
    spooled: &mut Spooled,
) -> Result<Command, CommandError> {
    let Command::LoadData { files } = command else {
        return Ok(command);
    };
    let mut sources = Vec::with_capacity(files.len());
    for source in files {
        let Source::Incoming { name, bytes } = source else {
            sources.push(source);
            continue;
        };
        let Some(file) = &context.file else {
            return Err(CommandError::Other(
                "the control socket serves a redb file only".to_owned(),
            ));
        };
        let mut path = file.as_os_str().to_owned();
        path.push(format!(
            ".loading-{}-{}",
            std::process::id(),
            spooled.0.len()
        ));
        let path = PathBuf::from(path);
        let _ = std::fs::remove_file(&path);
        crate::files::create_private(&path)
            .map_err(|error| CommandError::Other(format!("cannot spool {name}: {error}")))?;
        spooled.0.push(path.clone());
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .map_err(|error| CommandError::Other(format!("cannot spool {name}: {error}")))?;
        let copied = tokio::io::copy(&mut (&mut *reader).take(bytes), &mut file)
            .await
            .map_err(|error| CommandError::Other(format!("cannot receive {name}: {error}")))?;
        if copied != bytes {
            return Err(CommandError::Other(format!(
                "{name}: {copied} of {bytes} bytes arrived"
            )));
        }
        file.flush()
            .await
            .map_err(|error| CommandError::Other(format!("cannot spool {name}: {error}")))?;
        sources.push(Source::File { name, path });
    }
    Ok(Command::LoadData { files: sources })
}

/// Runs `command` inside the server that holds `database`.
pub async fn send(database: &Path, command: &Command) -> Result<String, CommandError> {
    let path = socket_path(database);
    let stream = UnixStream::connect(&path).await.map_err(|_| {
        CommandError::Other(format!(
            "the database {} is in use by another process, and no oxidot server answers on {}; \
             stop the other process (or wait for it to finish) and run the command again",
            database.display(),
            path.display()
        ))
    })?;
    let (read, mut write) = stream.into_split();
    // Fixture files travel after the request, as bytes, not inside it.
    let mut uploads = Vec::new();
    let command = match command.clone() {
        Command::LoadData { files } => {
            let mut sources = Vec::with_capacity(files.len());
            for source in files {
                match source {
                    Source::File { name, path } => {
                        let bytes = std::fs::metadata(&path)
                            .map_err(|error| {
                                CommandError::Other(format!("cannot read {name}: {error}"))
                            })?
                            .len();
                        uploads.push((path, bytes));
                        sources.push(Source::Incoming { name, bytes });
                    }
                    other => sources.push(other),
                }
            }
            Command::LoadData { files: sources }
        }
        other => other,
    };
    let mut request =
        serde_json::to_string(&command).map_err(|error| CommandError::Other(error.to_string()))?;
    request.push('\n');
    let socket_error =
        |error: std::io::Error| CommandError::Other(format!("control socket: {error}"));
    write
        .write_all(request.as_bytes())
        .await
        .map_err(socket_error)?;
    for (path, bytes) in uploads {
        let file = tokio::fs::File::open(&path).await.map_err(socket_error)?;
        let sent = tokio::io::copy(&mut file.take(bytes), &mut write)
            .await
            .map_err(socket_error)?;
        if sent != bytes {
            return Err(CommandError::Other(format!(
                "{} changed while it was being sent",
                path.display()
            )));
        }
    }
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(|error| CommandError::Other(format!("control socket: {error}")))?;
    let reply: Reply = serde_json::from_str(&line).map_err(|_| {
        CommandError::Other("the server closed the control socket without answering".to_owned())
    })?;
    if reply.ok {
        Ok(reply.output)
    } else {
        Err(CommandError::Other(reply.output))
    }
}
