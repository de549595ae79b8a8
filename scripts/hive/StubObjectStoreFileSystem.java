// Test-only Hadoop FileSystem for object-store schemes (s3, s3a, gs, abfss, az) in the test
// metastore. The metastore checks (and creates) every table and partition location through
// Hadoop's FileSystem, and pyspark ships no S3/GCS/Azure filesystem jars, so without this class
// such locations fail with "No FileSystem for scheme". Every path is reported as an existing,
// empty directory; nothing is ever read or written. Never use it outside tests.
package streamx.hive;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.net.URI;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.util.Progressable;

public final class StubObjectStoreFileSystem extends FileSystem {
  private URI uri;
  private Path workingDir;

  @Override
  public void initialize(URI name, Configuration conf) throws IOException {
    super.initialize(name, conf);
    String authority = name.getAuthority() == null ? "" : name.getAuthority();
    this.uri = URI.create(name.getScheme() + "://" + authority);
    this.workingDir = new Path(this.uri.toString() + "/");
    setConf(conf);
  }

  @Override
  public String getScheme() {
    return uri == null ? "stub" : uri.getScheme();
  }

  @Override
  public URI getUri() {
    return uri;
  }

  @Override
  public FileStatus getFileStatus(Path path) {
    Path qualified = makeQualified(path);
    return new FileStatus(0L, true, 1, 0L, 0L, 0L, null, "streamx", "streamx", qualified);
  }

  @Override
  public FileStatus[] listStatus(Path path) {
    return new FileStatus[0];
  }

  @Override
  public boolean mkdirs(Path path, FsPermission permission) {
    return true;
  }

  @Override
  public boolean delete(Path path, boolean recursive) {
    return true;
  }

  @Override
  public boolean rename(Path src, Path dst) {
    return true;
  }

  @Override
  public FSDataInputStream open(Path path, int bufferSize) throws IOException {
    throw new FileNotFoundException("stub filesystem holds no files: " + path);
  }

  @Override
  public FSDataOutputStream create(
      Path path,
      FsPermission permission,
      boolean overwrite,
      int bufferSize,
      short replication,
      long blockSize,
      Progressable progress)
      throws IOException {
    throw new IOException("stub filesystem is read-only: " + path);
  }

  @Override
  public FSDataOutputStream append(Path path, int bufferSize, Progressable progress)
      throws IOException {
    throw new IOException("stub filesystem is read-only: " + path);
  }

  @Override
  public void setWorkingDirectory(Path dir) {
    workingDir = dir;
  }

  @Override
  public Path getWorkingDirectory() {
    return workingDir;
  }
}
