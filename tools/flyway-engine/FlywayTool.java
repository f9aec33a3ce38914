import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.MigrationInfo;
import org.flywaydb.core.api.output.ValidateResult;

/**
 * The official Flyway engine run the way docker-compose runs it: the repository's flyway.conf (locations resolved
 * against the repository root), one database reached over its unix socket. Prints one line per fact, for tests.
 *
 * usage: FlywayTool <repository root> <socket directory> <port> <database> <user> migrate|validate|info
 */
public class FlywayTool {
    public static void main(String[] a) throws Exception {
        Path root = Path.of(a[0]).toAbsolutePath();
        Map<String, String> conf = new HashMap<>();
        for (String line : Files.readAllLines(root.resolve("flyway.conf"))) {
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            int eq = line.indexOf('=');
            conf.put(line.substring(0, eq).strip(), line.substring(eq + 1).strip());
        }
        // filesystem:db/migrations,... relative to the repository, as docker-compose mounts it
        StringBuilder locations = new StringBuilder();
        for (String loc : conf.get("flyway.locations").split(",")) {
            String path = loc.strip().replaceFirst("^filesystem:", "");
            if (locations.length() > 0) locations.append(',');
            locations.append("filesystem:").append(root.resolve(path));
        }
        conf.put("flyway.locations", locations.toString());
        String socket = a[1] + "/.s.PGSQL." + a[2];
        conf.put("flyway.url", "jdbc:postgresql://localhost:" + a[2] + "/" + a[3]
                 + "?socketFactory=org.newsclub.net.unix.AFUNIXSocketFactory$FactoryArg&socketFactoryArg=" + socket
                 + "&sslmode=disable");
        conf.put("flyway.user", a[4]);
        Flyway flyway = Flyway.configure().configuration(conf).load();
        switch (a[5]) {
            case "migrate" -> System.out.println("migrated " + flyway.migrate().migrationsExecuted);
            case "validate" -> {
                ValidateResult r = flyway.validateWithResult();
                System.out.println("valid " + r.validationSuccessful);
                if (r.errorDetails != null) System.out.println("error " + r.errorDetails.errorMessage);
                r.invalidMigrations.forEach(m -> System.out.println("invalid " + m.filepath + ": "
                                                                   + m.errorDetails.errorMessage));
            }
            case "info" -> {
                for (MigrationInfo m : flyway.info().all()) {
                    System.out.println("migration\t" + (m.getVersion() == null ? "" : m.getVersion()) + "\t"
                                       + m.getDescription() + "\t" + m.getState().getDisplayName() + "\t"
                                       + m.getChecksum());
                }
            }
            default -> throw new IllegalArgumentException("migrate, validate or info");
        }
    }
}
